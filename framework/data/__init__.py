"""The data layer: calendars, validation, CSV files, the Parquet store, providers, loading.

Everything else in fw gets bars through :func:`load_bars`; :func:`load_default` gives the
embedded offline data. Nothing is read or created at import time.
"""

from framework.data.embedded import EMBEDDED_SYMBOLS, load_default
from framework.data.importing import import_csv
from framework.data.loading import available_symbols, load_bars
from framework.data.store import BarStore

__all__ = [
    "EMBEDDED_SYMBOLS",
    "BarStore",
    "available_symbols",
    "import_csv",
    "load_bars",
    "load_default",
]

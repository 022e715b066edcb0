"""In-process fake of Webull's OpenAPI (REST, TLS on 127.0.0.1) for tests of the real SDK.

See :class:`FakeWebull` for the contract, ``auth.py`` for signatures and tokens, and
:class:`WebullFaults` for the failure switches.
"""

from .auth import ACCOUNT_ID, APP_KEY, APP_SECRET
from .server import CA_FILE, FakeWebull, WebullFaults

__all__ = ["ACCOUNT_ID", "APP_KEY", "APP_SECRET", "CA_FILE", "FakeWebull", "WebullFaults"]

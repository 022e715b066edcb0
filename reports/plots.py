"""Matplotlib helpers shared by the HTML reports: off-screen figures embedded as base64 PNG.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``, so
no figure is registered globally (nothing to leak or close) and no GUI backend is touched.
Everything is drawn inside :func:`quiet_plotting`, which reuses the tear sheet's guard (Agg,
restored rcParams, silenced font logs and warnings) and applies the house style for the call
only. Importing this module imports no matplotlib and has no side effects.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reports.tearsheet import _THEME_RC, _quiet_offscreen_plotting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The tear sheet's look, with smaller text: report figures are several small panels per image.
_REPORT_RC = {
    **_THEME_RC,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

PNG_DPI = 90


@contextmanager
def quiet_plotting() -> Iterator[None]:
    """Draw off screen with the report style; every matplotlib setting is restored on exit."""
    import matplotlib

    with _quiet_offscreen_plotting(), matplotlib.rc_context(_REPORT_RC):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width x height`` inches with constrained layout, outside ``pyplot``."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def figure_png_base64(figure: Figure, dpi: int = PNG_DPI) -> str:
    """Render ``figure`` to PNG and return it base64-encoded (ASCII), ready for a data URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def img_tag(figure: Figure, alt: str) -> str:
    """An ``<img>`` element embedding ``figure`` as a base64 PNG (no external file)."""
    data = figure_png_base64(figure)
    return (
        f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}" '
        'style="max-width:100%;height:auto">'
    )


def naive_utc(times: pd.DatetimeIndex | pd.Series | list) -> np.ndarray:
    """Close times as tz-naive UTC ``datetime64`` values, which matplotlib plots unambiguously."""
    index = pd.DatetimeIndex(times)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.to_numpy()


def spaced_ticks(n: int, most: int = 6) -> np.ndarray:
    """At most ``most`` evenly spaced positions in ``range(n)``, always including both ends."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))


def plot_levels(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Plot positions of parameter values: numbers as they are, anything else as category codes.

    Parameters
    ----------
    values : Series
        One parameter's values (numbers, booleans or anything with a ``str``).

    Returns
    -------
    positions : ndarray
        Float positions, one per value.
    labels : list of str or None
        Tick labels for positions ``0, 1, ...`` when the values are not numbers.
    """
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float).to_numpy(), ["False", "True"]
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=np.float64), None
    labels = sorted({str(v) for v in values})
    return np.array([labels.index(str(v)) for v in values], dtype=np.float64), labels


def draw_heatmap(ax: Any, grid: np.ndarray, cell: tuple[int, int] | None, cmap: Any) -> None:
    """Draw ``grid`` scaled to its own finite range and star the chosen ``cell``.

    Parameters
    ----------
    ax : Axes
        Where to draw.
    grid : ndarray
        ``(rows, columns)`` values; ``nan`` and ``-inf`` are drawn as "bad" (the colormap's bad
        colour), ``+inf`` as the top colour.
    cell : (row, column) or None
        The cell to mark with a star.
    cmap : Colormap
        The colormap (with its bad colour set).
    """
    finite = grid[np.isfinite(grid)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    # +inf (e.g. Sortino without a losing bar) ranks first: paint it as the panel's top colour.
    shown = np.where(np.isposinf(grid), high, np.where(np.isneginf(grid), np.nan, grid))
    ax.imshow(np.ma.masked_invalid(shown), origin="lower", aspect="auto", cmap=cmap,
              vmin=low, vmax=high if high > low else low + 1.0, interpolation="nearest")
    if cell is not None:
        ax.plot(cell[1], cell[0], marker="*", markersize=11, color="white", markeredgecolor="black")
    ax.grid(False)


def heatmap_ticks(ax: Any, axes_values: Sequence[list], names: Sequence[str], left: bool,
                  bottom: bool) -> None:
    """Label a heatmap panel sparsely, on the outer panels of a grid only.

    Parameters
    ----------
    ax : Axes
        The panel.
    axes_values : (row values, column values)
        The parameter values along each axis, in plotting order.
    names : (row name, column name)
        Axis labels.
    left, bottom : bool
        Whether the panel is in the grid's first column / last filled row.
    """
    rows, cols = axes_values
    row_ticks, col_ticks = spaced_ticks(len(rows), 5), spaced_ticks(len(cols), 5)
    ax.set_yticks(row_ticks, [str(rows[i]) for i in row_ticks] if left else [])
    ax.set_xticks(col_ticks, [str(cols[i]) for i in col_ticks] if bottom else [])
    if left:
        ax.set_ylabel(names[0])
    if bottom:
        ax.set_xlabel(names[1])

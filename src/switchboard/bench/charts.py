"""PNG charts for benchmark reports, drawn with matplotlib when it is installed.

matplotlib is an optional dependency (``pip install 'switchboard[bench]'``).
Without it :func:`render_charts` draws nothing and returns a hint instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MATPLOTLIB_HINT", "Chart", "Series", "render_charts"]

logger = logging.getLogger("switchboard.bench")

MATPLOTLIB_HINT = (
    "charts skipped because matplotlib is not installed;"
    " install it with pip install 'switchboard[bench]'"
)


@dataclass(slots=True)
class Series:
    """One line, or one set of bars, in a chart."""

    label: str
    x: list[float] | list[str]
    y: list[float]


@dataclass(slots=True)
class Chart:
    """A chart described as data, so that scenarios contain no plotting code."""

    name: str
    """File name part: the chart is saved as SCENARIO-NAME.png."""
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    bars: bool = False
    """Grouped bars over string x values instead of lines."""
    log_y: bool = False


def render_charts(
    scenario: str, charts: list[Chart], out_dir: Path
) -> tuple[list[Path], str]:
    """Save each chart as ``out_dir/SCENARIO-NAME.png``.

    Returns the paths written and a note for the report, which is empty
    unless matplotlib is missing.
    """
    if not charts:
        return [], ""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("%s", MATPLOTLIB_HINT)
        return [], MATPLOTLIB_HINT

    paths = []
    for chart in charts:
        figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
        if chart.bars:
            _draw_bars(axes, chart)
        else:
            for series in chart.series:
                axes.plot(series.x, series.y, marker=".", label=series.label)
        axes.set_title(chart.title)
        axes.set_xlabel(chart.x_label)
        axes.set_ylabel(chart.y_label)
        if chart.log_y:
            axes.set_yscale("log")
        axes.grid(True, alpha=0.3)
        if len(chart.series) > 1:
            axes.legend(fontsize=8)
        figure.tight_layout()
        path = out_dir / f"{scenario}-{chart.name}.png"
        figure.savefig(path)
        plt.close(figure)
        paths.append(path)
    return paths, ""


def _draw_bars(axes: Any, chart: Chart) -> None:
    labels = [str(value) for value in chart.series[0].x]
    width = 0.8 / len(chart.series)
    for index, series in enumerate(chart.series):
        offset = (index - (len(chart.series) - 1) / 2) * width
        positions = [position + offset for position in range(len(labels))]
        bars = axes.bar(positions, series.y, width, label=series.label)
        axes.bar_label(bars, fmt="%.3g", fontsize=7)
    axes.set_xticks(range(len(labels)), labels, rotation=20, ha="right")

"""Read a bar chart out of a plotly figure's JSON, without trusting it.

plotly 6 and later write NumPy arrays in figure JSON as typed arrays,
`{"dtype": "f8", "bdata": "<base64>"}`, so those are decoded here too.
"""

from __future__ import annotations

import base64
import dataclasses
import json

import numpy as np

# Typed-array dtype codes that plotly.js understands.
_TYPED_ARRAY_DTYPES = {"i1", "u1", "u1c", "i2", "u2", "i4", "u4", "f4", "f8"}


class FigureError(ValueError):
    """The figure is not a readable bar chart. The message gives the reason."""


@dataclasses.dataclass(frozen=True)
class BarChart:
    """The parts of a figure that the plot checks look at."""

    labels: list[str]
    heights: np.ndarray
    orientation: str
    bar_traces: int
    other_traces: int
    title: str
    xaxis_title: str
    yaxis_title: str


def _array(value) -> list | np.ndarray:
    if isinstance(value, dict) and "bdata" in value:
        dtype = str(value.get("dtype", "f8"))
        if dtype not in _TYPED_ARRAY_DTYPES:
            raise FigureError(f"unsupported typed array dtype {dtype!r}")
        raw = base64.b64decode(str(value["bdata"]))
        return np.frombuffer(raw, dtype=np.dtype("u1" if dtype == "u1c" else dtype)).astype(np.float64)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FigureError(f"bar coordinates must be a list, got {type(value).__name__}")
    return value


def _title(value) -> str:
    if isinstance(value, dict):
        value = value.get("text", "")
    return value if isinstance(value, str) else ""


def read_bar_chart(figure_json: str) -> BarChart:
    """Parse a figure's JSON into a `BarChart`."""
    try:
        figure = json.loads(figure_json)
    except json.JSONDecodeError as error:
        raise FigureError(f"the figure is not valid JSON ({error})") from None
    except RecursionError:
        raise FigureError("the figure's JSON is nested too deeply") from None
    if not isinstance(figure, dict) or not isinstance(figure.get("data", []), list):
        raise FigureError("the figure has no list of traces")
    traces = [trace for trace in figure.get("data", []) if isinstance(trace, dict)]
    bars = [trace for trace in traces if trace.get("type", "scatter") == "bar"]
    layout = figure.get("layout") if isinstance(figure.get("layout"), dict) else {}
    xaxis = layout.get("xaxis") if isinstance(layout.get("xaxis"), dict) else {}
    yaxis = layout.get("yaxis") if isinstance(layout.get("yaxis"), dict) else {}

    labels: list[str] = []
    heights = np.zeros(0)
    orientation = "v"
    if bars:
        bar = bars[0]
        orientation = bar.get("orientation") or "v"
        x, y = _array(bar.get("x")), _array(bar.get("y"))
        label_values, height_values = (x, y) if orientation == "v" else (y, x)
        labels = [str(label) for label in label_values]
        try:
            heights = np.asarray(height_values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise FigureError("the bar heights are not numbers") from None
    return BarChart(
        labels=labels,
        heights=heights,
        orientation=orientation,
        bar_traces=len(bars),
        other_traces=len(traces) - len(bars),
        title=_title(layout.get("title")),
        xaxis_title=_title(xaxis.get("title")),
        yaxis_title=_title(yaxis.get("title")),
    )

"""The benchmark table and `docs/benchmarks.md`, from measured figures."""

from __future__ import annotations

import dataclasses
import re
import statistics
from pathlib import Path

ISOLATION_HEADING = "## Isolation overhead"


@dataclasses.dataclass
class Row:
    """One measured item.

    Attributes:
      label: what was measured, e.g. "next-token logits, 10 tokens".
      kit_seconds: the kit's timed runs, in seconds (per token for generation).
      peer_seconds: transformers' timed runs in the same unit, or None.
      floor_seconds: the hardware floor in the same unit, or None.
      kit_rss_bytes: peak RSS of the kit's process tree, or None.
      peer_rss_bytes: peak RSS of the peer's process tree, or None.
      rate: show the figures as tokens per second (1 / seconds per token).
    """

    label: str
    kit_seconds: list[float]
    peer_seconds: list[float] | None = None
    floor_seconds: float | None = None
    kit_rss_bytes: int | None = None
    peer_rss_bytes: int | None = None
    rate: bool = False

    @property
    def kit_median(self) -> float:
        return statistics.median(self.kit_seconds)

    @property
    def peer_median(self) -> float | None:
        return statistics.median(self.peer_seconds) if self.peer_seconds else None

    @property
    def ratio(self) -> float | None:
        """Kit time over transformers time: below 1.0 means the kit is faster."""
        peer = self.peer_median
        return self.kit_median / peer if peer else None

    @property
    def floor_multiple(self) -> float | None:
        """Kit time as a multiple of the hardware floor."""
        return self.kit_median / self.floor_seconds if self.floor_seconds else None


def format_seconds(seconds: float | None, rate: bool = False) -> str:
    """Format a median: tokens/s when `rate`, else ms below 1 s and s above."""
    if seconds is None:
        return "-"
    if rate:
        return f"{1 / seconds:.1f} tok/s"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def format_bytes(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**30:.2f} GiB"


def format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_table(rows: list[Row]) -> str:
    """Return the results as a Markdown table, one line per row."""
    lines = [
        "| measurement | runs | kit | transformers | kit / transformers | floor | kit / floor | kit peak RSS "
        "| transformers peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.label} | {len(row.kit_seconds)} | {format_seconds(row.kit_median, row.rate)} | "
            f"{format_seconds(row.peer_median, row.rate)} | {format_ratio(row.ratio)} | "
            f"{format_seconds(row.floor_seconds, row.rate)} | {format_ratio(row.floor_multiple)} | "
            f"{format_bytes(row.kit_rss_bytes)} | {format_bytes(row.peer_rss_bytes)} |"
        )
    return "\n".join(lines) + "\n"


def replace_results(document: str, results: str) -> str:
    """Return `document` with everything before the isolation-overhead section replaced by `results`.

    The isolation-overhead section (written by `bench/isolation_overhead.py`)
    and anything after it are kept as they are; a document without it gets
    only `results`.
    """
    match = re.search(rf"^{re.escape(ISOLATION_HEADING)}\b", document, flags=re.MULTILINE)
    isolation_section = document[match.start():] if match else ""
    if not isolation_section:
        return results
    return results.rstrip("\n") + "\n\n" + isolation_section


def write_document(path: Path, results: str) -> None:
    existing = path.read_text() if path.is_file() else ""
    path.write_text(replace_results(existing, results))

"""The benchmark's table writer and its rewrite of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

from bench.report import ISOLATION_HEADING, Row, render_table, replace_results, write_document

REPO_ROOT = Path(__file__).resolve().parent.parent


def _rows() -> list[Row]:
    return [
        Row("next-token logits, 10-token lab prompt", [0.30, 0.10, 0.20], [0.40, 0.50, 0.45],
            floor_seconds=0.05, kit_rss_bytes=2 * 2**30, peer_rss_bytes=3 * 2**30),
        Row("greedy generation, 30 new tokens", [0.05, 0.04, 0.06], [0.10, 0.10, 0.10],
            floor_seconds=0.02, rate=True),
        Row("lm-grade of the reference solution", [12.0, 14.0, 13.0], kit_rss_bytes=2**30),
    ]


def test_table_medians_and_ratios():
    lines = render_table(_rows()).splitlines()

    assert lines[0].startswith("| measurement | runs | kit | transformers | kit / transformers")
    assert len(lines) == 2 + 3
    logits = [cell.strip() for cell in lines[2].split("|")[1:-1]]
    assert logits == ["next-token logits, 10-token lab prompt", "3", "200 ms", "450 ms", "0.44", "50 ms", "4.00",
                      "2.00 GiB", "3.00 GiB"]


def test_table_generation_as_rate():
    cells = [cell.strip() for cell in render_table(_rows()).splitlines()[3].split("|")[1:-1]]

    assert cells[2] == "20.0 tok/s"
    assert cells[3] == "10.0 tok/s"
    assert cells[4] == "0.50"  # kit time per token over transformers'
    assert cells[5] == "50.0 tok/s"
    assert cells[6] == "2.50"


def test_table_row_without_peer():
    cells = [cell.strip() for cell in render_table(_rows()).splitlines()[4].split("|")[1:-1]]

    assert cells[1] == "3"
    assert cells[2] == "13.0 s"
    assert cells[3:7] == ["-", "-", "-", "-"]
    assert cells[7] == "1.00 GiB"
    assert cells[8] == "-"


def test_rewrite_keeps_isolation_section(tmp_path):
    isolation = (REPO_ROOT / "docs" / "benchmarks.md").read_text()
    isolation = isolation[isolation.index(ISOLATION_HEADING):]
    document = tmp_path / "benchmarks.md"
    document.write_text("# Benchmarks\n\nold results\n\n" + isolation)

    write_document(document, "# Benchmarks\n\nnew results\n")

    text = document.read_text()
    assert "old results" not in text
    assert text.startswith("# Benchmarks\n\nnew results\n\n")
    assert text.endswith(isolation)


def test_rewrite_of_document_without_isolation():
    assert replace_results("# Old\n\nnumbers\n", "# New\n") == "# New\n"

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


def _saved_run() -> dict:
    import dataclasses

    from bench import machine

    rows = [
        Row("next-token logits, 10-token lab prompt", [0.7, 0.6, 0.8], [1.1, 1.2, 1.0], floor_seconds=0.09),
        Row("greedy generation, 30 new tokens", [0.8, 0.9, 0.7], [0.5, 0.4, 0.6], floor_seconds=0.03, rate=True),
        Row("lm-grade of the reference solution (warm caches)", [15.0, 16.0, 14.0], kit_rss_bytes=2 * 2**30),
        Row("lm-grade batch, 3 submissions, --jobs 2", [90.0], kit_rss_bytes=5 * 2**30),
    ]
    text = " water. She saw a man in a white shirt and a blue hat."
    return {
        "rows": [dataclasses.asdict(row) for row in rows],
        "floor": {"backends": {"numpy": {"matmul-10": 0.2}}, "matmul-10": 0.09, "stream": 0.03,
                  "weight_bytes": 2**30},
        "checks": {"top_kit": [[9259, 0.2038], [496, 0.1631]], "top_peer": [[9259, 0.2039], [496, 0.1630]],
                   "generate-30_kit": text, "generate-30_peer": text + " Other", "generate-30_tokens": [30, 30]},
        "before": machine.describe(),
        "after": machine.describe(),
        "command": ".venv/bin/python -m bench --quick",
        "batch_names": ["reference", "stub", "softmax_no_max_shift"],
        "total_minutes": 3.0,
    }


def test_document_from_saved_results(tmp_path):
    import json

    from bench.run import main

    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(_saved_run()))
    document = tmp_path / "benchmarks.md"
    document.write_text("# Benchmarks\n\n" + ISOLATION_HEADING + "\n\nkept\n")

    assert main(["--from-results", str(saved), "--output", str(document)]) == 0

    text = document.read_text()
    assert ".venv/bin/python -m bench --quick" in text
    assert "| next-token logits, 10-token lab prompt | 3 | 700 ms | 1.1 s | 0.64 |" in text
    assert "kit / transformers 0.64, target at most 1.0 (aim 0.5): met" in text
    assert "greedy generation, 30 new tokens: kit / transformers 1.60, target at most 1.0 (aim 0.5): NOT met" in text
    assert "15.0 s, target under 20 s: met" in text
    assert "2.15 GB (2.00 GiB), target under 3 GB: met" in text
    assert "same token ids in the same order: yes" in text
    assert "DIFFERENT" in text  # the two greedy texts differ
    assert text.endswith(ISOLATION_HEADING + "\n\nkept\n")

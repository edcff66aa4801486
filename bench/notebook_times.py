"""Measure how long the lab notebook and one `check(...)` call take in a real kernel.

Two runs with nbclient and the `python3` kernel of this environment:

1. the instructor's notebook `solutions/lab3_transformer.ipynb` top to
   bottom (its check cells run the public and the hidden checks);
2. a small notebook that defines the reference `softmax` and `top_k` and
   calls `check("softmax", softmax)` twice and `check("top_k", top_k)`
   once: the first call starts the grading process and loads the model,
   the later calls reuse it.

Per-cell times come from nbclient's execution timestamps. The load average
is printed before and after each run, because other work on the machine
slows every number.

    .venv/bin/python bench/notebook_times.py              # both runs
    .venv/bin/python bench/notebook_times.py --checks-only  # only the check(...) calls
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTION_NOTEBOOK = REPO_ROOT / "solutions" / "lab3_transformer.ipynb"


def _cell_seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    started = datetime.datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
    ended = datetime.datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    return (ended - started).total_seconds()


def _execute(notebook) -> float:
    print(f"  load average before: {os.getloadavg()}")
    started = time.monotonic()
    NotebookClient(notebook, kernel_name="python3", timeout=900, record_timing=True,
                   resources={"metadata": {"path": str(REPO_ROOT)}}).execute()
    elapsed = time.monotonic() - started
    print(f"  load average after:  {os.getloadavg()}")
    return elapsed


def _reference_cells() -> list[str]:
    """Return the source of the solution cells of softmax and top_k from the instructor's notebook."""
    notebook = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    sources = {}
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in ("imports", "softmax", "top_k"):
            sources[grade_id] = cell.source
    return [sources["imports"], sources["softmax"], sources["top_k"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks-only", action="store_true", help="time only the check(...) calls")
    if not parser.parse_args().checks_only:
        _time_notebook()
    _time_checks()


def _time_notebook() -> None:
    print(f"Solutions notebook, top to bottom ({SOLUTION_NOTEBOOK.name}):")
    notebook = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    total = _execute(notebook)
    print(f"  total: {total:.1f} s")
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            print(f"  {cell.metadata['nbgrader']['grade_id']}: {_cell_seconds(cell):.1f} s (public and hidden checks)")


def _time_checks() -> None:
    print("One check(...) call:")
    calls = ['check("softmax", softmax)', 'check("softmax", softmax)', 'check("top_k", top_k)']
    cells = [nbformat.v4.new_code_cell(source) for source in _reference_cells()]
    cells += [nbformat.v4.new_code_cell(call) for call in calls]
    small = nbformat.v4.new_notebook(cells=cells)
    _execute(small)
    for number, (call, cell) in enumerate(zip(calls, small.cells[-len(calls):]), start=1):
        print(f"  call {number}, {call}: {_cell_seconds(cell):.1f} s")


if __name__ == "__main__":
    main()

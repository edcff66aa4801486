"""check() in a real Jupyter kernel: failed cells, and functions from a file run with %run."""

import re

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

_CORRECT = "import numpy as np\n\ndef greedy_next_token(logits):\n    return int(np.argmax(np.asarray(logits)))\n"
_WRONG = "import numpy as np\n\ndef greedy_next_token(logits):\n    return int(np.argmin(np.asarray(logits)))\n"


def _printed(cell) -> str:
    return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")


def test_check_skips_failed_cells_and_grades_run_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    script = tmp_path / "my_greedy.py"
    script.write_text(_WRONG, encoding="utf-8")
    sources = [
        "from autograder.nbgrader_cells import check",
        "import nump as np",  # fails, then the student fixes it below
        "LIMIT = undefined_name",  # fails too
        _CORRECT + "\ngreedy_next_token(None, 1)  # raises TypeError, but the definition stands",
        'first = check("greedy_next_token", greedy_next_token)\nprint("FIRST", first)',
        f"%run {script}",
        'second = check("greedy_next_token", greedy_next_token)\nprint("SECOND", second)',
        'try:\n    check("greedy_next_token", max)\nexcept ValueError as error:\n    print("REJECTED", error)',
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    NotebookClient(notebook, kernel_name="python3", timeout=900, allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    cells = notebook.cells

    assert [output.ename for output in cells[1].outputs if output.output_type == "error"] == ["ModuleNotFoundError"]
    assert [output.ename for output in cells[2].outputs if output.output_type == "error"] == ["NameError"]
    assert [output.ename for output in cells[3].outputs if output.output_type == "error"] == ["TypeError"]

    # Of the failed cells only the definition is graded again, so it earns every public point.
    first = re.search(r"FIRST (\S+)", _printed(cells[4]))
    assert first is not None, cells[4].outputs
    assert float(first[1]) == 4.0

    # After %run, the function comes from the file, whose argmin loses the points.
    second = re.search(r"SECOND (\S+)", _printed(cells[6]))
    assert second is not None, cells[6].outputs
    assert float(second[1]) == 0.0

    rejected = _printed(cells[7])
    assert "REJECTED check('greedy_next_token', max) grades your function named greedy_next_token()" in rejected
    assert not any(output.output_type == "error" for cell in cells[4:] for output in cell.outputs)

"""The student release is generated from the solution and kept up to date."""

import ast
import json

import nbformat
import pytest

from autograder.grading import list_tests
from autograder.release import STUDENT_NOTEBOOK_PATH, generate_student_notebook, strip_solutions
from conftest import REPO_ROOT, SOLUTION, STUB

FUNCTIONS = ["softmax", "top_k", "greedy_next_token", "sample_next_token", "top_p_filter", "generate",
             "plot_next_token"]
SOLUTION_NOTEBOOK = REPO_ROOT / "solutions" / "lab3_transformer.ipynb"


def _functions(source):
    return {node.name: node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}


def _nbgrader_cells(path):
    notebook = nbformat.read(path, as_version=4)
    return {cell.metadata["nbgrader"]["grade_id"]: cell for cell in notebook.cells if "nbgrader" in cell.metadata}


def test_stub_is_up_to_date():
    expected = strip_solutions(SOLUTION.read_text())
    assert STUB.read_text() == expected, "exercises/ is stale: run `python -m autograder.release`"


def test_stub_has_same_signatures_and_docstrings():
    solution, stub = _functions(SOLUTION.read_text()), _functions(STUB.read_text())
    assert list(solution) == list(stub) == FUNCTIONS
    for name in FUNCTIONS:
        assert ast.dump(solution[name].args) == ast.dump(stub[name].args)
        assert ast.get_docstring(solution[name]) == ast.get_docstring(stub[name])
        body = stub[name].body[-1]
        assert isinstance(body, ast.Raise) and "NotImplementedError" in ast.unparse(body)


def test_student_notebook_is_up_to_date():
    expected = generate_student_notebook()
    assert STUDENT_NOTEBOOK_PATH.read_text() == expected, "exercises/ is stale: run `python -m autograder.release`"


def test_solution_cells_match_solution_file():
    """Each solution cell contains the function of solutions/lab3_transformer.py, line for line."""
    lines = SOLUTION.read_text().splitlines()
    cells = _nbgrader_cells(SOLUTION_NOTEBOOK)
    for name, node in _functions(SOLUTION.read_text()).items():
        assert cells[name].metadata["nbgrader"]["solution"] is True
        cell_source = cells[name].source
        first_line = node.lineno - 1
        expected = "\n".join(lines[first_line:first_line + len(cell_source.splitlines())])
        assert cell_source == expected, f"the {name} cell differs from {SOLUTION.name}"
        assert cell_source.rstrip().endswith("### END SOLUTION")


def test_test_cells_carry_exercise_points():
    totals = {}
    for test in list_tests():
        totals[test.exercise] = totals.get(test.exercise, 0.0) + test.max_score
    cells = _nbgrader_cells(SOLUTION_NOTEBOOK)
    for name in FUNCTIONS:
        cell = cells[f"test_{name}"]
        assert cell.metadata["nbgrader"]["grade"] is True
        assert cell.metadata["nbgrader"]["locked"] is True
        assert float(cell.metadata["nbgrader"]["points"]) == totals[name]
        assert f'check("{name}", {name})' in cell.source
        hidden_block = cell.source.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS", 1)[0]
        assert f'check("{name}", {name}, hidden=True)' in hidden_block
    graded = [cell for cell in cells.values() if cell.metadata["nbgrader"].get("grade")]
    assert sum(float(cell.metadata["nbgrader"]["points"]) for cell in graded) == 100


@pytest.mark.parametrize("marker", ["### BEGIN SOLUTION", "### END SOLUTION", "BEGIN HIDDEN TESTS", "hidden=True"])
def test_student_notebook_hides_answers(marker):
    assert marker not in STUDENT_NOTEBOOK_PATH.read_text()


def test_student_notebook_has_stubs_and_checks():
    cells = _nbgrader_cells(STUDENT_NOTEBOOK_PATH)
    for name in FUNCTIONS:
        assert cells[name].source.rstrip().endswith("raise NotImplementedError()")
        assert cells[f"test_{name}"].source == f'points = check("{name}", {name})\npoints'
    assert json.loads(STUDENT_NOTEBOOK_PATH.read_text())["metadata"]["kernelspec"]["name"] == "python3"

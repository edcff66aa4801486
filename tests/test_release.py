"""The student release is generated from the solution and kept up to date."""

import ast

from autograder.release import strip_solutions
from conftest import SOLUTION, STUB

FUNCTIONS = ["softmax", "top_k", "greedy_next_token", "sample_next_token", "top_p_filter", "generate",
             "plot_next_token"]


def _functions(source):
    return {node.name: node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}


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

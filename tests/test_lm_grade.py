"""lm-grade end to end, in subprocesses, on the real model."""

import json
import subprocess
import sys

import nbformat
import pytest

from conftest import SOLUTION, STUB

pytestmark = pytest.mark.slow

LM_GRADE = [sys.executable, "-m", "autograder.cli"]


def _grade(*args, timeout=900):
    return subprocess.run([*LM_GRADE, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def _grade_json(path, *extra):
    result = _grade(path, "--format", "json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _assert_valid_report(report):
    assert set(report) >= {"score", "max_score", "tests"}
    for test in report["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
        assert 0 <= test["score"] <= test["max_score"]
    assert report["score"] == pytest.approx(sum(test["score"] for test in report["tests"]))


def test_solution_scores_full_marks():
    report = _grade_json(SOLUTION)
    _assert_valid_report(report)
    failed = {test["name"]: test["output"] for test in report["tests"] if test["score"] < test["max_score"]}
    assert failed == {}
    assert report["score"] == report["max_score"] == 100


def test_stub_scores_zero():
    report = _grade_json(STUB)
    _assert_valid_report(report)
    assert report["score"] == 0
    assert report["max_score"] == 100
    assert all("not implemented yet" in test["output"] for test in report["tests"])


def test_notebook_with_magics_scores_full_marks(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Lab 3"),
        nbformat.v4.new_code_cell("!pip install gemma==3.3.0\n%matplotlib inline"),
        nbformat.v4.new_code_cell(SOLUTION.read_text()),
        nbformat.v4.new_code_cell(
            "from lm_support import prompt_transformer_model\n"
            "text, logits, tokenizer = prompt_transformer_model('Jide was hungry so she went looking for', 1)\n"
            "plot_next_token(logits, tokenizer, 'Jide').show()"
        ),
    ]
    path = tmp_path / "lab3_transformer.ipynb"
    nbformat.write(notebook, path)
    report = _grade_json(tmp_path)  # a folder holding the notebook
    _assert_valid_report(report)
    assert report["score"] == 100
    assert "cell 2, line 1" in report["output"]
    assert "cell 4, line 2" in report["output"]


def test_text_report_and_public_only(tmp_path):
    broken = tmp_path / "lab3_transformer.py"
    # One realistic mistake: softmax without subtracting the maximum.
    source = SOLUTION.read_text().replace(
        "shifted = np.exp(values - values.max(axis=-1, keepdims=True))", "shifted = np.exp(values)"
    )
    assert source != SOLUTION.read_text()
    broken.write_text(source)

    full = _grade(broken)
    assert full.returncode == 0, full.stderr
    assert "Score: 97 / 100" in full.stdout
    assert "Expected: finite probabilities" in full.stdout
    assert "Subtract the maximum logit" in full.stdout

    public = _grade_json(broken, "--public-only")
    assert public["tests"] and all(test["visibility"] == "visible" for test in public["tests"])
    assert public["score"] == public["max_score"] < 100


def test_syntax_error_gives_zero_and_valid_report(tmp_path):
    broken = tmp_path / "lab3_transformer.py"
    broken.write_text("def softmax(logits:\n    return logits\n")
    report = _grade_json(broken)
    _assert_valid_report(report)
    assert report["score"] == 0
    assert "SyntaxError at line 1" in report["output"]


def test_list_tests_totals_100():
    result = _grade("--list-tests")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["100", "total"]
    for exercise in ("softmax", "top_k", "greedy_next_token", "sample_next_token", "top_p_filter",
                     "generate", "plot_next_token"):
        assert f" {exercise}: " in result.stdout


@pytest.mark.parametrize("args", [["--no-such-option", str(SOLUTION)], ["/no/such/file.py"], []])
def test_usage_errors_exit_2(args):
    result = _grade(*args, timeout=120)
    assert result.returncode == 2
    assert "error" in result.stderr


def test_lab_notebook_scores_full_marks():
    """The nbgrader source notebook, with its solutions, grades like the .py."""
    report = _grade_json(SOLUTION.with_suffix(".ipynb"))
    _assert_valid_report(report)
    assert report["score"] == 100

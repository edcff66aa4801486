"""`check(...)` outside Jupyter gives the verdicts of `lm-grade --public-only`.

Three submissions (the student stub, the reference solution and a softmax
that normalises over the whole array instead of each row) are checked twice: by `check("softmax",
softmax)` in a plain Python process, and by `lm-grade --public-only`. The
points must be equal and each failed check must appear in both.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import SOLUTION, STUB

pytestmark = pytest.mark.slow

WRONG_SOFTMAX = '''
import numpy as np


def softmax(logits):
    values = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()  # sums over the whole array, not over each row
'''

# A script run as `python lab3_transformer.py`, as a student would run their file.
SCRIPT_FOOTER = '''

if __name__ == "__main__":
    from autograder.nbgrader_cells import check

    print("POINTS", check("softmax", softmax))
'''

# An interpreter whose `__main__` is not the student's file: `check` must find the file from the function.
IMPORTING_SCRIPT = '''
import sys

sys.path.insert(0, {folder!r})
from lab3_transformer import softmax
from autograder.nbgrader_cells import check

print("POINTS", check("softmax", softmax, hint=True))
'''


def _lm_grade_public(path, tmp_path):
    output = tmp_path / f"{path.stem}-report.json"
    command = [sys.executable, "-m", "autograder.cli", str(path), "--public-only", "--format", "json",
               "--output", str(output)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    tests = json.loads(output.read_text())["tests"]
    return [test for test in tests if test["name"].startswith("softmax: ")]


def _run(arguments, cwd):
    completed = subprocess.run([sys.executable, *arguments], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    points_lines = [line for line in completed.stdout.splitlines() if line.startswith("POINTS ")]
    assert len(points_lines) == 1, completed.stdout
    return completed.stdout, float(points_lines[0].split()[1])


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("terminal-check")
    files = {}
    for name, source in [("stub", STUB.read_text()), ("solution", SOLUTION.read_text()),
                         ("wrong", WRONG_SOFTMAX)]:
        student_folder = folder / name
        student_folder.mkdir()
        path = student_folder / "lab3_transformer.py"
        path.write_text(source + SCRIPT_FOOTER)
        files[name] = path
    return files


def test_stub_is_not_implemented(submissions, tmp_path):
    path = submissions["stub"]
    stdout, points = _run([str(path)], path.parent)
    expected = _lm_grade_public(path, tmp_path)
    assert points == 0
    assert sum(test["score"] for test in expected) == 0
    assert all("is not implemented yet" in test["output"] for test in expected)
    assert "softmax is not implemented yet (0 of" in stdout
    assert "Checked:" not in stdout


def test_solution_passes(submissions, tmp_path):
    path = submissions["solution"]
    stdout, points = _run([str(path)], path.parent)
    expected = _lm_grade_public(path, tmp_path)
    assert points == sum(test["max_score"] for test in expected)
    assert points == sum(test["score"] for test in expected)
    assert f"PASS softmax: all {len(expected)} public checks pass" in stdout


def test_wrong_softmax_same_failures(submissions, tmp_path):
    path = submissions["wrong"]
    script = path.parent.parent / "import_wrong.py"
    script.write_text(textwrap.dedent(IMPORTING_SCRIPT.format(folder=str(path.parent))))
    stdout, points = _run([str(script)], script.parent)
    expected = _lm_grade_public(path, tmp_path)
    failed = [test for test in expected if test["score"] < test["max_score"]]
    assert failed, "the wrong softmax must fail some public check"
    assert points == sum(test["score"] for test in expected)
    assert f"FAIL softmax: {len(failed)} of {len(expected)} public checks fail" in stdout
    for test in failed:
        title = test["name"].split(": ", 1)[1]
        assert f"FAIL 0/{test['max_score']:g}  {title}" in stdout
        assert test["output"].splitlines()[0] in stdout
    # hint=True prints each hint that lm-grade's output carries.
    for test in failed:
        for line in test["output"].splitlines():
            if line.startswith("Hint:"):
                assert line in stdout

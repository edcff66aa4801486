"""lm-grade batch end to end, in subprocesses, on the real model."""

import collections
import csv
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from autograder.batch import StudentEntry, grade_all, grade_submission
from autograder.grading import list_tests
from autograder.plugin import EXERCISES
from conftest import SOLUTION, STUB

LM_GRADE_BATCH = [sys.executable, "-m", "autograder.cli", "batch"]

# lm_support logs one of these each time a process really loads the model.
MODEL_LOAD_MESSAGES = ("Loading converted weights from", "Converting Gemma 3 270M from GGUF")

# The one realistic mistake of test_lm_grade: softmax without subtracting the maximum costs 3 points.
UNSTABLE_SOFTMAX = ("shifted = np.exp(values - values.max(axis=-1, keepdims=True))", "shifted = np.exp(values)")


def _batch(*args, timeout=1200):
    return subprocess.run([*LM_GRADE_BATCH, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def _read_csv(path):
    with path.open(newline="") as file:
        return list(csv.reader(file))


def _model_loads(stderr):
    return sum(message in line for line in stderr.splitlines() for message in MODEL_LOAD_MESSAGES)


def _write_class(folder):
    """Write four students' submissions: one mistake, and three that cannot be run or found."""
    folder.mkdir()
    partly = SOLUTION.read_text().replace(*UNSTABLE_SOFTMAX)
    assert partly != SOLUTION.read_text()
    (folder / "cy").mkdir()
    (folder / "cy" / "lab3_transformer.py").write_text(partly)
    (folder / "dee.py").write_text("def softmax(logits:\n    return logits\n")
    (folder / "eve").mkdir()
    (folder / "eve" / "lab3_transformer.py").write_text("import numpy as np\nSCALE = 1 / 0\n")
    (folder / "fay").mkdir()
    (folder / "fay" / "draft.py").write_text(STUB.read_text())
    (folder / "fay" / "final.py").write_text(STUB.read_text())
    (folder / "notes.txt").write_text("not a submission")


@pytest.mark.slow
def test_batch_writes_csv_and_reports(tmp_path):
    _write_class(tmp_path / "class")
    gradebook = tmp_path / "out" / "grades.csv"
    result = _batch(tmp_path / "class", "--output", gradebook, "--jobs", "2")
    assert result.returncode == 0, result.stderr

    rows = _read_csv(gradebook)
    assert rows[0] == ["student", "score", "max_score", *EXERCISES, "note"]
    by_student = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert list(by_student) == ["cy", "dee", "eve", "fay"]
    for row in by_student.values():
        assert row["max_score"] == "100"
        assert float(row["score"]) == pytest.approx(sum(float(row[exercise]) for exercise in EXERCISES))

    exercise_max = collections.Counter()
    for test in list_tests():
        exercise_max[test.exercise] += test.max_score
    assert by_student["cy"]["score"] == "97"
    assert by_student["cy"]["softmax"] == f"{exercise_max['softmax'] - 3:g}"
    for exercise in EXERCISES[1:]:
        assert by_student["cy"][exercise] == f"{exercise_max[exercise]:g}", exercise
    assert by_student["cy"]["note"] == ""
    assert by_student["dee"]["score"] == "0"
    assert "SyntaxError at line 1" in by_student["dee"]["note"]
    assert by_student["eve"]["score"] == "0"
    assert "ZeroDivisionError" in by_student["eve"]["note"]
    assert by_student["fay"]["score"] == "0"
    assert "several candidate files (draft.py, final.py)" in by_student["fay"]["note"]

    reports = tmp_path / "out" / "grades-reports"
    assert sorted(path.name for path in reports.iterdir()) == ["cy.txt", "dee.txt", "eve.txt", "fay.txt"]
    assert "Score: 97 / 100" in (reports / "cy.txt").read_text()
    assert "Subtract the maximum logit" in (reports / "cy.txt").read_text()
    assert "Not graded" in (reports / "fay.txt").read_text()

    assert "notes.txt" in result.stderr  # listed as skipped
    assert _model_loads(result.stderr) == 2, "each of the 2 workers loads the model exactly once"


@pytest.mark.slow
def test_batch_junit_gradebook(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "dee.py").write_text("def softmax(logits:\n    return logits\n")
    (folder / "fay").mkdir()
    gradebook = tmp_path / "grades.xml"
    result = _batch(folder, "--output", gradebook, "--format", "junit", "--report-format", "json")
    assert result.returncode == 0, result.stderr

    suites = ElementTree.parse(gradebook).getroot()
    assert suites.tag == "testsuites"
    by_student = {suite.get("name"): suite for suite in suites}
    assert list(by_student) == ["dee", "fay"]
    dee_cases = by_student["dee"].findall("testcase")
    assert len(dee_cases) > 20
    assert all(case.find("failure") is not None for case in dee_cases)
    assert by_student["fay"].find("testcase/error") is not None
    assert "contains no .py or .ipynb file" in by_student["fay"].find("testcase/error").text

    reports = tmp_path / "grades-reports"
    assert sorted(path.name for path in reports.iterdir()) == ["dee.json", "fay.json"]
    assert _model_loads(result.stderr) == 1


def _exit_on_marker(path, model_name, public_only):
    """Grade `path` in the worker, but kill the worker first when the file is named kill-worker.py."""
    if path.name == "kill-worker.py":
        os._exit(1)
    return grade_submission(path, model_name, public_only)


@pytest.mark.slow
def test_dead_worker_is_retried_then_reported(tmp_path):
    (tmp_path / "kill-worker.py").write_text(STUB.read_text())
    entries = [StudentEntry("kill", tmp_path / "kill-worker.py"), StudentEntry("stub", STUB)]
    results = grade_all(entries, model_name="Gemma-270M", jobs=1, task=_exit_on_marker)

    assert [result.entry.student for result in results] == ["kill", "stub"]
    killed, graded = results
    assert killed.report is None
    assert "died 2 times" in killed.error
    assert graded.error is None
    assert graded.report.max_score == 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/folder", "--output", "grades.csv"], "is not a folder"),
        (["{empty}", "--output", "grades.csv"], "contains no submissions"),
        (["{empty}", "--output", "grades.csv", "--jobs", "0"], "invalid number of jobs 0"),
        (["{empty}"], "--output"),
        (["{empty}", "--output", "grades.csv", "--model", "GPT-2"], "unknown model"),
    ],
)
def test_batch_usage_errors_exit_2(tmp_path, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _batch(*(arg.format(empty=empty) for arg in args), timeout=120)
    assert result.returncode == 2
    assert message in result.stderr

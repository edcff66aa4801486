"""`check(...)` feedback rendering and `skip_if_not_implemented`, without the model."""

import html
import subprocess
import sys

import pytest

from autograder.check_report import render_html, render_text, report_from_reply, split_hint
from autograder.nbgrader_cells import check, skip_if_not_implemented

FAILED_OUTPUT = (
    "Checked:  softmax(logits + 1000) after the thirsty prompt\n"
    "Expected: finite probabilities summing to 1\n"
    "Received: array of shape (262144,), dtype float64: [nan nan nan nan ... nan nan nan nan]\n"
    "Hint:     Subtract the maximum logit before calling exp()."
)


def _reply(statuses, hidden_points=6.0, notes=()):
    tests = []
    for number, status in enumerate(statuses):
        output = {"passed": "", "failed": FAILED_OUTPUT,
                  "not implemented": "softmax() is not implemented yet (it raises NotImplementedError)."}[status]
        tests.append({"title": f"Check number {number}", "status": status, "score": 3.0 if status == "passed" else 0.0,
                      "max_score": 3.0, "output": output})
    return {"exercise": "softmax", "hidden": False, "tests": tests, "notes": list(notes),
            "hidden_points": hidden_points}


def test_split_hint_separates_hint_line():
    details, hint = split_hint(FAILED_OUTPUT)
    assert hint == "Subtract the maximum logit before calling exp()."
    assert "Hint" not in details
    assert details.startswith("Checked:  softmax(logits + 1000)")
    assert details.endswith("nan nan nan nan]")


def test_split_hint_without_hint():
    assert split_hint("softmax() raised ValueError: bad\n") == ("softmax() raised ValueError: bad", "")


def test_pass_is_one_line():
    report = report_from_reply(_reply(["passed", "passed"]))
    text = render_text(report, show_hints=False, hint_call='check("softmax", softmax, hint=True)')
    assert text.splitlines()[0] == "PASS softmax: all 2 public checks pass (6 of 6 points)."
    assert "6 more points of softmax come from hidden checks" in text
    assert "FAIL" not in text
    assert report.earned == 6.0


def test_pass_of_one_check():
    report = report_from_reply(_reply(["passed"], hidden_points=0.0))
    text = render_text(report, show_hints=False, hint_call="unused")
    assert text == "PASS softmax: the public check passes (3 of 3 points)."


def test_failure_text_hides_hint_by_default():
    report = report_from_reply(_reply(["passed", "failed"]))
    text = render_text(report, show_hints=False, hint_call='check("softmax", softmax, hint=True)')
    assert "FAIL softmax: 1 of 2 public checks fail (3 of 6 points)." in text
    assert "| FAIL 0/3  Check number 1" in text
    assert "|     Expected: finite probabilities summing to 1" in text
    assert "Subtract the maximum" not in text
    assert 'A hint is available: run check("softmax", softmax, hint=True)' in text


def test_failure_text_shows_hint_on_request():
    report = report_from_reply(_reply(["failed"]))
    text = render_text(report, show_hints=True, hint_call="unused")
    assert "Hint:     Subtract the maximum logit before calling exp()." in text
    assert "A hint is available" not in text


def test_failure_html_puts_hint_behind_details():
    report = report_from_reply(_reply(["passed", "failed"]))
    closed = render_html(report, show_hints=False)
    assert "<details><summary>Hint</summary>Subtract the maximum logit before calling exp().</details>" in closed
    assert "FAIL 0/3  Check number 1" in html.unescape(closed)
    assert "Received: array of shape (262144,)" in html.unescape(closed)
    assert "<details open>" in render_html(report, show_hints=True)


def test_stub_reports_not_implemented():
    report = report_from_reply(_reply(["not implemented", "not implemented"]))
    assert report.not_implemented
    text = render_text(report, show_hints=False, hint_call="unused")
    assert "softmax is not implemented yet (0 of 6 points)." in text
    assert "Check number" not in text
    assert "softmax is not implemented yet" in render_html(report, show_hints=False)


def test_partial_stub_lists_failures():
    report = report_from_reply(_reply(["not implemented", "failed"]))
    assert not report.not_implemented
    assert "FAIL 0/3  Check number 0" in render_text(report, show_hints=False, hint_call="unused")


def test_notes_are_shown():
    report = report_from_reply(_reply(["passed"], notes=["Your code printed outside the checks:\nhello"]))
    text = render_text(report, show_hints=False, hint_call="unused")
    assert "| ! Your code printed outside the checks:" in text
    assert "| ! hello" in text


def _stub():
    raise NotImplementedError()


def _demo_calls_stub():
    return _stub() + 1


def test_skip_catches_indirect_not_implemented(capsys):
    with skip_if_not_implemented():
        _demo_calls_stub()
        pytest.fail("the block must stop at the stub")
    assert capsys.readouterr().out == "_stub() is not implemented yet: write it above and run this cell again.\n"


def test_skip_lets_other_errors_through():
    with pytest.raises(ValueError, match="wrong"):
        with skip_if_not_implemented():
            raise ValueError("wrong")


def test_skip_is_silent_without_error(capsys):
    with skip_if_not_implemented():
        value = 1
    assert value == 1
    assert capsys.readouterr().out == ""


def test_check_without_source_file_raises():
    # `python -c` has no `__main__.__file__`, and a partial of a builtin has no source file.
    code = "import functools; from autograder.nbgrader_cells import check; check('softmax', functools.partial(print))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1
    assert "RuntimeError: check() grades the cells of a notebook or the file" in completed.stderr
    assert "lm-grade --public-only lab3_transformer.py" in completed.stderr


def test_check_rejects_non_function():
    with pytest.raises(TypeError, match="must be your function"):
        check("softmax", "softmax")


def test_check_rejects_unknown_exercise():
    from autograder import nbgrader_cells

    with pytest.raises(ValueError, match="Unknown exercise 'softmaxx'.*top_p_filter"):
        nbgrader_cells.check("softmaxx")
    assert nbgrader_cells._grading_process is None


def test_exercises_match_grading_suites():
    from autograder import nbgrader_cells, nbgrader_service

    assert set(nbgrader_cells.EXERCISES) == set(nbgrader_service.SUITE_FILES)


def test_check_rejects_function_of_other_name():
    from autograder import nbgrader_cells

    with pytest.raises(ValueError, match=r"check\('softmax', top_k\) grades your function named softmax\(\)"):
        nbgrader_cells.check("softmax", top_k)
    assert nbgrader_cells._grading_process is None


def top_k(probs, k):
    return probs, k


def test_student_hint_line_is_not_the_hint():
    output = "Checked:  x\nReceived: abc\nHint: student text\nHint:     the kit's hint"
    details, hint = split_hint(output)
    assert hint == "the kit's hint"
    assert "Hint: student text" in details


def test_terminal_text_escapes_control_characters():
    reply = {"exercise": "softmax", "hidden": False, "hidden_points": 0, "notes": [], "tests": [{
        "title": "softmax of real logits", "status": "failed", "score": 0, "max_score": 4,
        "output": "Received: \x1b[2K\x1b[1A\x1b[32mPASS softmax (99 of 99 points)\rX",
    }]}
    text = render_text(report_from_reply(reply), show_hints=False, hint_call="check('softmax', hint=True)")
    assert "\x1b" not in text
    assert "\r" not in text
    assert "\\x1b[32mPASS" in text

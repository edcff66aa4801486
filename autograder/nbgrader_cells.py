"""Grade one Lab 3 exercise from a notebook test cell (nbgrader or local).

A test cell of the lab notebook reads::

    points = check("softmax")
    ### BEGIN HIDDEN TESTS
    points += check("softmax", hidden=True)
    ### END HIDDEN TESTS
    points

`check` grades the code cells that the kernel has run so far with the same
checks as `lm-grade`, prints the kit's feedback for each check and returns
the points earned. nbgrader gives a test cell partial credit when its last
output is a number (`nbgrader.utils.determine_grade`, nbgrader 0.9.6), so a
cell worth an exercise's total scores exactly what `lm-grade` gives that
exercise. Students' copies lack the hidden block, so they see their public
points only.

The grading runs in a separate process (`autograder.nbgrader_service`),
started on the first call and kept for the kernel's lifetime, so the model
is loaded once per notebook. That process runs the student's functions in
the same sandbox as `lm-grade`. Nothing here writes to stderr, because
nbgrader gives 0 points to a test cell with any stderr output.

NOTE: nbgrader reads the score from the cell's output, and student code runs
in the same kernel as this module. A student who replaces `check` in the
kernel can print any number. Cross-check suspicious scores with `lm-grade`.

This module imports only the standard library, so that the `import` of it in
a graded notebook costs nothing in the sandbox.
"""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
import tempfile
import textwrap
import warnings
from typing import Any

DEFAULT_MODEL = "Gemma-270M"
_LOG_TAIL_CHARACTERS = 2000


class GradingServiceError(RuntimeError):
    """The grading process failed or stopped. The message contains the tail of its log."""


class _GradingProcess:
    """One `autograder.nbgrader_service` process with its log file."""

    def __init__(self) -> None:
        log = tempfile.NamedTemporaryFile(prefix="lm-grade-notebook-", suffix=".log", delete=False)
        self.log_path = log.name
        self._process = subprocess.Popen(
            [sys.executable, "-m", "autograder.nbgrader_service"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,  # never the kernel's stderr, which nbgrader would count as an error
            text=True,
            encoding="utf-8",
            # Not in the kernel's process group, which Jupyter kills at shutdown, so the
            # process reads the end of its stdin and exits cleanly.
            start_new_session=True,
        )
        log.close()

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self.stop()
            raise GradingServiceError(
                f"The grading process stopped unexpectedly (exit status {self._process.returncode}). "
                f"The last lines of its log, {self.log_path}:\n{self._log_tail()}"
            )
        return json.loads(line)

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                return log.read()[-_LOG_TAIL_CHARACTERS:]
        except OSError as error:
            return f"(the log could not be read: {error})"

    def stop(self, *, wait_seconds: float = 0.0) -> None:
        """Stop the process: it exits by itself at the end of its stdin, else it is killed.

        A clean exit lets it delete its temporary folder and stop its sandbox.
        """
        try:
            self._process.stdin.close()
        except OSError:
            pass
        try:
            self._process.wait(timeout=wait_seconds)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


_grading_process: _GradingProcess | None = None


def _stop_grading_process(wait_seconds: float = 0.0) -> None:
    global _grading_process
    if _grading_process is not None:
        _grading_process.stop(wait_seconds=wait_seconds)
        _grading_process = None


atexit.register(_stop_grading_process, wait_seconds=5.0)


def _kernel_cells() -> list[str]:
    """Return the source of every cell the IPython kernel has run, in order."""
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is None:
        raise RuntimeError(
            "check() grades the cells of a running notebook; outside Jupyter, grade the file "
            "with `lm-grade lab3_transformer.py` instead."
        )
    # Entry 0 is an empty placeholder; a re-run cell appears again, and its later definitions win.
    return [cell for cell in shell.history_manager.input_hist_raw[1:] if cell.strip()]


def _format_points(value: float) -> str:
    return f"{value:g}"


def _print_report(reply: dict[str, Any]) -> float:
    exercise, hidden, tests = reply["exercise"], reply["hidden"], reply["tests"]
    earned = round(sum(test["score"] for test in tests), 6)
    available = round(sum(test["max_score"] for test in tests), 6)
    visibility = "hidden" if hidden else "public"
    print(f"{exercise}: {_format_points(earned)} of {_format_points(available)} points from the {visibility} checks.")
    for test in tests:
        mark = "PASS" if test["status"] == "passed" else "FAIL"
        print(f"  {mark} {_format_points(test['score'])}/{_format_points(test['max_score'])}  {test['title']}")
        if test["output"]:
            print(textwrap.indent(test["output"].rstrip(), "      "))
    if not hidden and reply["hidden_points"]:
        print(
            f"{_format_points(reply['hidden_points'])} more points of {exercise} come from hidden checks, "
            "which run when your notebook is graded."
        )
    for note in reply["notes"]:
        print(textwrap.indent(note, "  ! ", predicate=lambda line: True))
    return earned


def check(exercise: str, hidden: bool = False, model_name: str = DEFAULT_MODEL) -> float:
    """Grade `exercise` on the cells run so far, print the feedback and return the points.

    Args:
      exercise: the function under test, e.g. "softmax" (as `lm-grade --list-tests` names it).
      hidden: run the exercise's hidden checks instead of its public ones.
      model_name: the model the checks use, as `lm_support.load_model` names it.

    Raises:
      GradingServiceError: the grading process failed; the message contains the tail of its log.
    """
    # A Python warning would go to stderr and cost the whole cell: show it on stdout instead.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reply = _request_grading(exercise, hidden, model_name)
    for warning in caught:
        print(f"Warning while grading: {warning.category.__name__}: {warning.message}")
    return _print_report(reply)


def _request_grading(exercise: str, hidden: bool, model_name: str) -> dict[str, Any]:
    global _grading_process
    cells = _kernel_cells()
    if _grading_process is None:
        print("Starting the grader and loading the model (once per notebook, about a minute)...", flush=True)
        _grading_process = _GradingProcess()
    request = {"exercise": exercise, "hidden": bool(hidden), "model_name": model_name, "cells": cells}
    try:
        reply = _grading_process.request(request)
    except BaseException:
        # A timeout interrupt leaves a reply pending: the next call must start afresh.
        _stop_grading_process()
        raise
    if "error" in reply:
        raise GradingServiceError(
            f"Grading {exercise} failed: {reply['error']}\nThe grader's log is {_grading_process.log_path}."
        )
    return reply


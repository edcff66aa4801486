"""`grade`: run the suites against one submission and return its report.

Steps: read the submission, start its sandboxed process, run the pytest
suites in this (trusted) process with `GradingPlugin`, and total the points.
Whatever the submission does, the result is a complete `GradeReport`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import threading
import time
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.plugin import VISIBLE, GradingPlugin, TestResult
from autograder.student import StudentCode
from autograder.submission import Submission, read_submission

logger = logging.getLogger(__name__)

SUITES_DIR = Path(__file__).resolve().parent / "suites"
MAX_SCORE = 100.0


@dataclasses.dataclass
class GradeReport:
    """The graded result of one submission."""

    submission: str
    tests: list[TestResult]
    execution_seconds: float = 0.0
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(test.score for test in self.tests), 6)

    @property
    def max_score(self) -> float:
        return round(sum(test.max_score for test in self.tests), 6)


def _pytest_arguments(selection: list[str]) -> list[str]:
    return [
        str(SUITES_DIR),
        "-p", "no:cacheprovider",
        "-p", "no:terminal",
        "-p", "no:randomly",
        "--rootdir", str(SUITES_DIR),
        "-c", str(SUITES_DIR / "pytest.ini"),
        "--import-mode=importlib",
        *selection,
    ]


def _notes_for(submission: Submission) -> list[str]:
    notes = [message[:1].upper() + message[1:] + "." for message in submission.broken_cells]
    if submission.skipped:
        shown = "; ".join(f"{location}: {text}" for location, text in submission.skipped[:8])
        more = f"; and {len(submission.skipped) - 8} more" if len(submission.skipped) > 8 else ""
        notes.append(
            "The grader runs only imports, definitions and assignments without calls, "
            f"so it skipped these top-level statements: {shown}{more}."
        )
    return notes


# Models whose first programs this process has compiled: a batch worker
# grades many submissions and needs to compile them once.
_compiled_models: set[str] = set()


def _compile_model_programs(model_name: str) -> None:
    """Load the model and compile its first forward passes (run in a thread)."""
    if model_name in _compiled_models:
        return
    try:
        from lm_support import load_model
        from lm_support.prepare import compile_programs

        compile_programs(load_model(model_name), new_tokens=2)
        _compiled_models.add(model_name)
    except Exception:  # noqa: BLE001  (the suites' model fixture reports the same error)
        logger.debug("Loading or compiling %s ahead of the suites failed", model_name, exc_info=True)


def run_suites(student: StudentCode, model_name: str, public_only: bool, selection: list[str]) -> list[TestResult]:
    """Run the pytest suites in this process and return one result per test."""
    plugin = GradingPlugin(student, model_name=model_name, public_only=public_only)
    pytest_output = io.StringIO()
    with contextlib.redirect_stdout(pytest_output):
        exit_code = pytest.main(_pytest_arguments(selection), plugins=[plugin])
    logger.debug("pytest exited with %s:\n%s", exit_code, pytest_output.getvalue())
    if exit_code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise RuntimeError(f"The grading suites could not run (pytest exit code {exit_code}).")

    # A test that never reported (an error in a session fixture) scores 0.
    reported = {id(result) for result in plugin.results}
    for result in plugin.collected:
        if id(result) not in reported:
            result.output = result.output or "This check did not run."
            plugin.results.append(result)
    return plugin.results


def grade(
    path: Path,
    *,
    model_name: str = "Gemma-270M",
    public_only: bool = False,
    limits: sandbox.Limits = sandbox.Limits(),
    isolation: str | None = None,
    selection: list[str] | None = None,
) -> GradeReport:
    """Grade the submission at `path` and return its report.

    `isolation` is an `autograder.confinement.MODES` value; None reads
    `$LM_GRADE_ISOLATION` and means "auto" where it is unset.

    Raises:
      confinement.IsolationUnavailable: `isolation` names a level that does
        not work on this machine.
    """
    started = time.monotonic()
    submission = read_submission(path)
    notes = _notes_for(submission)

    source = submission.source
    if submission.syntax_error:
        notes.insert(0, f"Your file could not be run: {submission.syntax_error}")
        # Grade a module that raises the same error, so every test reports it.
        source = f"raise SyntaxError({submission.syntax_error!r})\n"

    # Tracing and compiling the model's forward passes takes seconds in this
    # process, and starting the sandbox takes seconds in the child, so both
    # run at the same time.
    compiling = threading.Thread(
        target=_compile_model_programs, args=(model_name,), name="compile-model", daemon=True
    )
    compiling.start()
    with sandbox.Sandbox(source, limits, isolation) as box:
        try:
            box.start()
        except sandbox.LoadError as error:
            logger.info("Submission %s failed to load: %s", submission.path, error)
            if not submission.syntax_error:
                details = f"\n{error.traceback.rstrip()}" if error.traceback.strip() else ""
                notes.insert(0, f"{error}{details}")
        printed_at_import = box.take_output().strip()
        if printed_at_import:
            notes.append(f"Your code printed while it was imported:\n{printed_at_import}")
        compiling.join()
        student = StudentCode(box)
        tests = run_suites(student, model_name, public_only, selection or [])
        printed = box.take_output().strip()
    if printed:
        notes.append(f"Your code printed outside the checks:\n{printed}")
    if public_only:
        hidden = [test for test in list_tests() if test.visibility != VISIBLE]
        notes.append(
            f"This local check ran only the public checks; {len(hidden)} more checks worth "
            f"{sum(test.max_score for test in hidden):g} points run in full grading."
        )
    return GradeReport(str(submission.path), tests, time.monotonic() - started, notes)


def list_tests() -> list[TestResult]:
    """Return every test of the suites with its points and visibility."""
    plugin = GradingPlugin(student=None, model_name="Gemma-270M", public_only=False)
    with contextlib.redirect_stdout(io.StringIO()):
        exit_code = pytest.main(_pytest_arguments(["--collect-only"]), plugins=[plugin])
    if exit_code != pytest.ExitCode.OK:
        raise RuntimeError(f"The grading suites could not be collected (pytest exit code {exit_code}).")
    return plugin.collected

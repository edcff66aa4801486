"""The pytest plugin that turns suite runs into scored, explained results.

Suites mark each test with its points (`@pytest.mark.points(4)`), may hide
it from students (`@pytest.mark.hidden`), and name their exercise in a
module-level `pytestmark = pytest.mark.exercise("softmax")`. The first line
of a test's docstring is its title. The plugin provides the `student`,
`model` and `lab` fixtures and collects one `TestResult` per test.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from autograder import sandbox
from autograder.feedback import CheckFailed
from autograder.student import StudentCode

logger = logging.getLogger(__name__)

# The Lab 3 functions in the order the lab teaches them; reports follow it.
EXERCISES = (
    "softmax", "top_k", "greedy_next_token", "sample_next_token", "top_p_filter", "generate", "plot_next_token",
)

VISIBLE = "visible"
HIDDEN = "after_due_date"  # Gradescope's name for tests shown after the deadline


@dataclasses.dataclass
class TestResult:
    """The outcome of one test, as reports show it."""

    name: str
    exercise: str
    title: str
    max_score: float
    visibility: str
    score: float = 0.0
    output: str = ""
    status: str = "failed"  # passed | failed | not implemented | error


def test_metadata(item: pytest.Item) -> TestResult:
    """Read the points, exercise, title and visibility of a collected test."""
    points = item.get_closest_marker("points")
    exercise = item.get_closest_marker("exercise")
    if points is None or exercise is None:
        raise pytest.UsageError(f"{item.nodeid} needs both a points and an exercise marker")
    if exercise.args[0] not in EXERCISES:
        raise pytest.UsageError(f"{item.nodeid} names an unknown exercise {exercise.args[0]!r}")
    doc = (item.function.__doc__ or item.name).strip().splitlines()[0].rstrip(".")
    visibility = HIDDEN if item.get_closest_marker("hidden") else VISIBLE
    return TestResult(
        name=f"{exercise.args[0]}: {doc}",
        exercise=exercise.args[0],
        title=doc,
        max_score=float(points.args[0]),
        visibility=visibility,
    )


def _failure_text(error: BaseException) -> tuple[str, str]:
    """Return (status, feedback) for an exception raised by a test."""
    if isinstance(error, CheckFailed):
        return "failed", error.render()
    if isinstance(error, sandbox.StudentError):
        if error.error_type == "NotImplementedError":
            return "not implemented", f"{error.function}() is not implemented yet (it raises NotImplementedError)."
        text = f"{error.function}() raised {error.error_type}: {error.message}"
        if error.traceback.strip():
            text += f"\nTraceback (your code only):\n{error.traceback.rstrip()}"
        return "failed", text
    if isinstance(error, sandbox.LoadError):
        return "error", "Not checked: the submission could not be run (see the note below the scores)."
    if isinstance(error, sandbox.SubmissionFailure):
        return "failed", str(error)
    logger.error("Grader error in a test: %r", error, exc_info=error)
    return "error", (
        f"The grader failed while running this check ({type(error).__name__}: {error}). "
        "This is a fault of the grader, not of your code: please report it."
    )


class GradingPlugin:
    """Fixtures and hooks for one grading run."""

    def __init__(self, student: StudentCode, model_name: str, public_only: bool):
        self._student = student
        self._model_name = model_name
        self._public_only = public_only
        self.results: list[TestResult] = []
        self.collected: list[TestResult] = []

    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", "points(n): points awarded when the test passes")
        config.addinivalue_line("markers", "exercise(name): the student function under test")
        config.addinivalue_line("markers", "hidden: run only in full grading, not in local checks")

    # trylast: see the items left after `-k` and `-m` deselection, so that
    # deselected tests are not reported as checks that did not run.
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        kept = []
        for item in items:
            metadata = test_metadata(item)
            if self._public_only and metadata.visibility == HIDDEN:
                continue
            item.stash[_RESULT_KEY] = metadata
            kept.append(item)
        kept.sort(key=lambda item: EXERCISES.index(item.stash[_RESULT_KEY].exercise))  # stable: file order within
        items[:] = kept
        self.collected = [item.stash[_RESULT_KEY] for item in kept]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        result: TestResult = item.stash[_RESULT_KEY]
        if report.when == "call" or (report.when == "setup" and report.failed):
            if report.passed:
                result.status, result.score = "passed", result.max_score
            else:
                error = call.excinfo.value if call.excinfo else None
                result.status, result.output = _failure_text(error) if error else ("error", "no result")
            printed = self._student.sandbox.take_output().strip()
            if printed:
                result.output = (result.output + "\n" if result.output else "") + f"Your code printed:\n{printed}"
            self.results.append(result)
        return report

    @pytest.fixture(scope="session")
    def student(self) -> StudentCode:
        return self._student

    @pytest.fixture(scope="session")
    def model(self):
        from autograder.checks import CachedModel
        from lm_support import load_model

        return CachedModel(load_model(self._model_name))


_RESULT_KEY = pytest.StashKey[TestResult]()

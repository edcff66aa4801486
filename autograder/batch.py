"""`lm-grade batch`: grade a folder of submissions into a gradebook.

Each entry of the folder is one student: a `.py` or `.ipynb` file (the
student is the file name without its suffix) or a folder holding one (the
student is the folder name). Submissions are graded in worker processes
started with `spawn`; each worker loads the model once, when it starts, and
grades many submissions with it. Student code still runs in its own
sandboxed child per submission, never in a worker.

Outputs: a gradebook (CSV or JUnit XML) and one report per student in the
folder `<gradebook stem>-reports` beside the gradebook.
"""

from __future__ import annotations

import collections
import concurrent.futures
import csv
import dataclasses
import json
import logging
import multiprocessing
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from autograder.plugin import EXERCISES
from autograder.submission import EXPECTED_NAMES, SubmissionNotFound

logger = logging.getLogger(__name__)

GRADEBOOK_FORMATS = ("csv", "junit")
REPORT_FORMATS = ("text", "json", "junit")
_REPORT_SUFFIXES = {"text": ".txt", "json": ".json", "junit": ".xml"}
_SUBMISSION_SUFFIXES = tuple(sorted({Path(name).suffix for name in EXPECTED_NAMES}))

# A worker that dies takes every submission in flight with it. Each of them
# is graded once more, alone in a fresh worker, before it is given up.
_MAX_ATTEMPTS = 2


class BatchError(Exception):
    """The batch cannot start; the message names the invalid input."""


@dataclasses.dataclass(frozen=True)
class StudentEntry:
    """One student's submission: a file or a folder inside the batch folder."""

    student: str
    path: Path


@dataclasses.dataclass
class BatchResult:
    """The outcome for one student: a report, or the reason there is none."""

    entry: StudentEntry
    report: object | None = None  # autograder.grading.GradeReport
    error: str | None = None

    @property
    def score(self) -> float:
        return self.report.score if self.report is not None else 0.0


def find_students(folder: Path, ignored: Iterable[Path] = ()) -> list[StudentEntry]:
    """List the submissions in `folder`, sorted by student name.

    Skips hidden entries, the paths in `ignored` (the gradebook and its
    report folder) and files other than `.py` and `.ipynb`, and logs the
    skipped files. Raises `BatchError` when nothing is left to grade.
    """
    if not folder.is_dir():
        raise BatchError(f"{folder} is not a folder (not found or a file); pass the folder that contains one file or folder per student.")
    ignored_paths = {path.resolve() for path in ignored}
    entries, skipped = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.resolve() in ignored_paths:
            continue
        if path.is_dir():
            entries.append(StudentEntry(path.name, path))
        elif path.is_file() and path.suffix in _SUBMISSION_SUFFIXES:
            entries.append(StudentEntry(path.stem, path))
        else:
            skipped.append(path.name)
    if skipped:
        logger.warning("Skipped %d entries that are neither folders nor .py/.ipynb files: %s",
                       len(skipped), ", ".join(skipped))
    if not entries:
        raise BatchError(
            f"{folder} contains no submissions; expected one .py or .ipynb file or one folder per student."
        )
    return _unique_names(entries)


def _unique_names(entries: list[StudentEntry]) -> list[StudentEntry]:
    """Use the full entry name for students whose names would clash (`ada.py` and `ada/`)."""
    counts = collections.Counter(entry.student for entry in entries)
    unique = [
        StudentEntry(entry.path.name, entry.path) if counts[entry.student] > 1 else entry
        for entry in entries
    ]
    return sorted(unique, key=lambda entry: entry.student)


# Worker side: these functions run in the spawned worker processes.

def _start_worker(model_name: str, log_level: int) -> None:
    """Configure logging and load the model, once per worker process."""
    from lm_support import _quiet  # noqa: F401  (sets the backend variables before jax loads)
    from lm_support._quiet import silence_python_loggers

    # Before jax loads: importing absl adds a root handler that would make basicConfig do nothing.
    logging.basicConfig(level=log_level, format="lm-grade worker: %(message)s", stream=sys.stderr)
    from lm_support import load_model

    silence_python_loggers()
    try:
        load_model(model_name)
    except Exception as error:  # noqa: BLE001
        # An initializer that raises breaks the whole pool and hides the
        # reason; `grade_submission` loads again and reports it per student.
        logging.getLogger(__name__).error("Loading %s failed: %s", model_name, error)


def grade_submission(path: Path, model_name: str, public_only: bool):
    """Grade one submission in this worker, with the model that `load_model` cached when the worker started."""
    from autograder.grading import grade
    from lm_support import load_model

    load_model(model_name)  # cached: raises here, with its message, only if the model cannot be loaded
    return grade(path, model_name=model_name, public_only=public_only)


# Coordinator side.

def _new_pool(jobs: int, model_name: str) -> concurrent.futures.ProcessPoolExecutor:
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(model_name, logging.getLogger().getEffectiveLevel()),
    )


def grade_all(
    entries: list[StudentEntry],
    *,
    model_name: str,
    jobs: int,
    public_only: bool = False,
    task: Callable = grade_submission,
    on_result: Callable[[BatchResult], None] | None = None,
) -> list[BatchResult]:
    """Grade every entry in a pool of `jobs` worker processes.

    Returns one result per entry, in the order of `entries`. A submission
    whose grading raises gets a result with `error` set. When a worker dies,
    the submissions that were in flight are graded again, one at a time in a
    fresh pool, and given up with an error after `_MAX_ATTEMPTS` tries.
    `task(path, model_name, public_only)` grades one submission in a worker.
    """
    results: dict[StudentEntry, BatchResult] = {}
    queue = collections.deque((entry, 1) for entry in entries)
    in_flight: dict[concurrent.futures.Future, tuple[StudentEntry, int]] = {}
    pool = _new_pool(jobs, model_name)

    def finish(result: BatchResult) -> None:
        results[result.entry] = result
        if on_result is not None:
            on_result(result)

    try:
        while queue or in_flight:
            # A retried submission runs alone, so a second death is its own.
            while queue and len(in_flight) < jobs:
                entry, attempt = queue[0]
                if attempt > 1 and in_flight:
                    break
                queue.popleft()
                try:
                    future = pool.submit(task, entry.path, model_name, public_only)
                except BrokenProcessPool:  # a worker died while idle
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = _new_pool(jobs, model_name)
                    future = pool.submit(task, entry.path, model_name, public_only)
                in_flight[future] = (entry, attempt)
                if attempt > 1:
                    break

            done, _ = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
            pool_broken = False
            for future in done:
                entry, attempt = in_flight.pop(future)
                try:
                    finish(BatchResult(entry, report=future.result()))
                except BrokenProcessPool:
                    pool_broken = True
                    _retry_or_fail(entry, attempt, queue, finish)
                except SubmissionNotFound as error:
                    logger.warning("Nothing to grade for %s: %s", entry.student, error)
                    finish(BatchResult(entry, error=f"not graded: {error}"))
                except Exception as error:  # noqa: BLE001  (one submission must not stop the batch)
                    logger.error("Grading %s failed: %s: %s", entry.path, type(error).__name__, error)
                    finish(BatchResult(entry, error=f"grading failed: {type(error).__name__}: {error}"))

            if pool_broken:
                # The other futures of a broken pool fail too: requeue them now.
                for entry, attempt in in_flight.values():
                    _retry_or_fail(entry, attempt, queue, finish)
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _new_pool(jobs, model_name)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [results[entry] for entry in entries]


def _retry_or_fail(entry: StudentEntry, attempt: int, queue: collections.deque, finish: Callable) -> None:
    if attempt < _MAX_ATTEMPTS:
        logger.warning("A grading worker died while grading %s; grading it again in a fresh worker", entry.path)
        queue.append((entry, attempt + 1))
        return
    logger.error("A grading worker died %d times while grading %s; giving up on it", attempt, entry.path)
    finish(BatchResult(entry, error=(
        f"grading failed: the grading worker process died {attempt} times on this submission "
        "(out of memory or a crash in the grader); grade it alone with lm-grade to see why"
    )))


# Outputs.

def exercise_points(report) -> dict[str, float]:
    """Return the points earned in each exercise, keyed in `EXERCISES` order."""
    points = dict.fromkeys(EXERCISES, 0.0)
    for test in report.tests:
        points[test.exercise] += test.score
    return {exercise: round(value, 6) for exercise, value in points.items()}


def summary_note(result: BatchResult) -> str:
    """Return a one-line note for the gradebook: the grading error, or the first line of each report note."""
    if result.error is not None:
        return result.error
    lines = [note.strip().splitlines()[0] for note in result.report.notes if note.strip()]
    note = " | ".join(lines)
    return note if len(note) <= 300 else note[:297] + "..."


def _spreadsheet_safe(text: str) -> str:
    """Prefix text that a spreadsheet would run as a formula (CSV injection) with an apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _points(value: float) -> str:
    return f"{value:g}"


def write_csv(results: list[BatchResult], path: Path, max_score: float) -> None:
    """Write the gradebook: student, score, max_score, one column per exercise, note."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "score", "max_score", *EXERCISES, "note"])
        for result in results:
            if result.report is not None:
                points = [_points(value) for value in exercise_points(result.report).values()]
            else:
                points = ["0"] * len(EXERCISES)
            writer.writerow([
                _spreadsheet_safe(result.entry.student),
                _points(result.score),
                _points(max_score),
                *points,
                _spreadsheet_safe(summary_note(result)),
            ])


def write_junit(results: list[BatchResult], path: Path) -> None:
    """Write one JUnit test suite per student, each check a test case."""
    from autograder.reports import printable, to_junit

    suites = ElementTree.Element("testsuites", name="lm-grade batch")
    for result in results:
        if result.report is not None:
            suite = ElementTree.fromstring(to_junit(result.report).encode("utf-8"))
        else:
            suite = ElementTree.fromstring(_failure_report(result, "junit").encode("utf-8"))
        suite.set("name", printable(result.entry.student))
        suites.append(suite)
    path.write_text(ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n", encoding="utf-8")


def reports_folder(gradebook: Path) -> Path:
    """Return the folder for per-student reports: `<gradebook stem>-reports` beside the gradebook."""
    return gradebook.with_name(f"{gradebook.stem}-reports")


def write_student_report(result: BatchResult, folder: Path, report_format: str) -> Path:
    """Write one student's report into `folder` and return its path."""
    from autograder.reports import render

    path = folder / f"{result.entry.student}{_REPORT_SUFFIXES[report_format]}"
    if result.report is not None:
        text = render(result.report, report_format)
    else:
        text = _failure_report(result, report_format)
    path.write_text(text, encoding="utf-8")
    return path


def _failure_report(result: BatchResult, report_format: str) -> str:
    """Render the report of a submission that could not be graded, with a score of 0."""
    from autograder.reports import printable

    if report_format == "json":
        payload = {"score": 0, "output": printable(f"Not graded: {result.error}"), "tests": []}
        return json.dumps(payload, indent=2) + "\n"
    if report_format == "junit":
        suite = ElementTree.Element("testsuite", name="lm-grade", tests="1", failures="0", errors="1", time="0")
        case = ElementTree.SubElement(suite, "testcase", classname="grading", name="grading")
        ElementTree.SubElement(case, "error", message="not graded").text = printable(result.error)
        return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
    return f"Submission: {printable(repr(str(result.entry.path)))}\n\nNot graded: {printable(result.error)}\n"


def _max_score(results: list[BatchResult], public_only: bool) -> float:
    for result in results:
        if result.report is not None:
            return result.report.max_score
    from autograder.grading import list_tests  # no report to take it from: collect the suites
    from autograder.plugin import VISIBLE

    return sum(test.max_score for test in list_tests() if test.visibility == VISIBLE or not public_only)


def run_batch(
    folder: Path,
    output: Path,
    *,
    gradebook_format: str = "csv",
    report_format: str = "text",
    jobs: int = 1,
    model_name: str = "Gemma-270M",
    public_only: bool = False,
) -> list[BatchResult]:
    """Grade every submission in `folder`, write the gradebook to `output` and the reports beside it."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    reports = reports_folder(output)
    entries = find_students(folder, ignored=(output, reports))
    output.parent.mkdir(parents=True, exist_ok=True)
    reports.mkdir(exist_ok=True)
    jobs = min(jobs, len(entries))
    logger.info("Grading %d submissions from %s with %d worker process(es) on %s",
                len(entries), folder, jobs, model_name)

    with logging_redirect_tqdm(), tqdm(total=len(entries), desc="Grading", unit="submission") as progress:
        def record(result: BatchResult) -> None:
            write_student_report(result, reports, report_format)
            progress.update()

        results = grade_all(entries, model_name=model_name, jobs=jobs, public_only=public_only, on_result=record)

    if gradebook_format == "junit":
        write_junit(results, output)
    else:
        write_csv(results, output, _max_score(results, public_only))
    failed = sum(result.error is not None for result in results)
    logger.info("Wrote the gradebook %s and %d reports in %s", output, len(results), reports)
    if failed:
        logger.warning("%d of %d submissions could not be graded; their rows have a score of 0 and a note",
                       failed, len(results))
    return results

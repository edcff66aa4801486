"""The trusted grading process behind the notebook test cells.

`autograder.nbgrader_cells.check` starts this module once per Jupyter
kernel or Python process (`python -m autograder.nbgrader_service`) and
sends it one JSON request per line on stdin: the code cells the kernel has
run so far (`cells`) or the path of a `.py` or `.ipynb` file (`path`), an
exercise and whether to run its public or its hidden checks. The service
grades those cells exactly as `lm-grade` grades a notebook (the same
`read_submission`, sandboxed child process and pytest suites, with the real
model loaded once and kept for the kernel's lifetime) and writes one JSON
reply per line. Student code runs only in the sandbox's child process,
never here and never in the kernel's grading call.

The protocol uses the process's original stdout. Everything else that
writes to file descriptor 1 (pytest, JAX, TensorFlow) is sent to stderr,
which the kernel side points at a log file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from lm_support import _quiet  # noqa: F401  (sets the backends' log levels before they load)

logger = logging.getLogger(__name__)

# The pytest module of each exercise in `autograder/suites/`.
SUITE_FILES = {
    "softmax": "test_softmax.py",
    "top_k": "test_top_k.py",
    "greedy_next_token": "test_greedy.py",
    "sample_next_token": "test_sampling.py",
    "top_p_filter": "test_top_p.py",
    "generate": "test_generate.py",
    "plot_next_token": "test_plot.py",
}


class GradingService:
    """Grade requests against one sandbox, restarted when the submitted code changes."""

    def __init__(self, workdir: Path):
        self._workdir = workdir
        self._box = None
        self._student = None
        self._loaded: tuple[str, tuple[str, ...]] | None = None  # the sandbox's source and its notes
        self._notes: list[str] = []
        self._hidden_points: dict[str, float] | None = None

    def hidden_points(self, exercise: str) -> float:
        """Return the total points of the exercise's hidden checks."""
        if self._hidden_points is None:
            from autograder import grading
            from autograder.plugin import HIDDEN

            self._hidden_points = dict.fromkeys(SUITE_FILES, 0.0)
            for test in grading.list_tests():
                if test.visibility == HIDDEN:
                    self._hidden_points[test.exercise] += test.max_score
        return self._hidden_points[exercise]

    def close(self) -> None:
        if self._box is not None:
            self._box.close()
            self._box = None

    def _load(self, cells: list[str] | None, path: str | None) -> None:
        """Start a sandbox for `cells` or the file at `path`, unless it already runs the same code.

        The code compared is what the sandbox would run (the imports,
        definitions and assignments that `read_submission` keeps), so a new
        check cell or an edited experiment does not restart the sandbox.
        """
        import nbformat

        from autograder import sandbox
        from autograder.student import StudentCode
        from autograder.submission import read_submission

        if cells is not None:
            notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
            submission_path = self._workdir / "lab3_transformer.ipynb"
            nbformat.write(notebook, submission_path)
        else:
            submission_path = Path(path)
        submission = read_submission(submission_path)
        # Unlike `lm-grade`, no note lists the skipped top-level statements: every test cell is one.
        notes = [message[:1].upper() + message[1:] + "." for message in submission.broken_cells]
        source = submission.source
        if submission.syntax_error:
            notes.insert(0, f"Your code could not be run: {submission.syntax_error}")
            # As in `grading.grade`: a module that raises the same error, so every check reports it.
            source = f"raise SyntaxError({submission.syntax_error!r})\n"
        loaded = (source, tuple(notes))
        if loaded == self._loaded and self._box is not None:
            return

        self.close()
        box = sandbox.Sandbox(source, sandbox.Limits())
        try:
            box.start()
        except sandbox.LoadError as error:
            logger.info("Notebook code failed to load: %s", error)
            if not submission.syntax_error:
                details = f"\n{error.traceback.rstrip()}" if error.traceback.strip() else ""
                notes.insert(0, f"{error}{details}")
        self._box, self._student, self._loaded, self._notes = box, StudentCode(box), loaded, notes

    def grade(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one exercise's public or hidden checks on the request's cells."""
        from autograder import grading

        exercise = request["exercise"]
        hidden = bool(request.get("hidden", False))
        model_name = request.get("model_name", "Gemma-270M")
        cells = request.get("cells")
        path = request.get("path")
        if exercise not in SUITE_FILES:
            raise ValueError(f"unknown exercise {exercise!r}; expected one of {', '.join(SUITE_FILES)}")
        if (cells is None) == (path is None):
            raise ValueError("a request needs exactly one of 'cells' and 'path'")
        if cells is not None and (not isinstance(cells, list) or not all(isinstance(cell, str) for cell in cells)):
            raise ValueError("'cells' must be a list of strings")
        if path is not None and not (isinstance(path, str) and Path(path).is_file()):
            raise ValueError(f"'path' must name an existing file, got {path!r}")

        self._load(cells, path)
        selection = ["-k", SUITE_FILES[exercise], "-m", "hidden" if hidden else "not hidden"]
        results = grading.run_suites(self._student, model_name, public_only=False, selection=selection)
        stray = sorted({result.exercise for result in results} - {exercise})
        if stray:
            raise RuntimeError(f"the selection for {exercise} also ran checks of {', '.join(stray)}")
        printed = self._box.take_output().strip()
        notes = list(self._notes)
        if printed:
            notes.append(f"Your code printed outside the checks:\n{printed}")
        return {
            "exercise": exercise,
            "hidden": hidden,
            "tests": [dataclasses.asdict(result) for result in results],
            "notes": notes,
            "hidden_points": self.hidden_points(exercise),
        }


def serve(requests: TextIO, replies: TextIO) -> None:
    """Read JSON requests, one per line, and write one reply per request until `requests` ends."""
    with tempfile.TemporaryDirectory(prefix="lm-grade-notebook-") as workdir:
        service = GradingService(Path(workdir))
        try:
            for line in requests:
                if not line.strip():
                    continue
                started = time.monotonic()
                try:
                    request = json.loads(line)
                    reply = service.grade(request)
                    logger.info("Graded the %s checks of %s in %.1f s", "hidden" if reply["hidden"] else "public",
                                reply["exercise"], time.monotonic() - started)
                except Exception as error:  # one bad request must not end the service
                    logger.exception("Request failed")
                    reply = {"error": f"{type(error).__name__}: {error}"}
                replies.write(json.dumps(reply) + "\n")
                replies.flush()
        finally:
            service.close()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _quiet.silence_python_loggers()
    # Keep the protocol stream for replies and send any other output on fd 1 to stderr.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logger.info("Notebook grading service started (pid %d)", os.getpid())
    serve(sys.stdin, replies)
    logger.info("Notebook grading service stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

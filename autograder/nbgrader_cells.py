"""Grade one Lab 3 exercise from a notebook test cell (nbgrader or local) or a script.

A test cell of the lab notebook reads::

    points = check("softmax", softmax)
    ### BEGIN HIDDEN TESTS
    points += check("softmax", softmax, hidden=True)
    ### END HIDDEN TESTS
    points

`check` grades the code cells that the kernel has run so far with the same
checks as `lm-grade`, shows the kit's feedback (`autograder.check_report`)
and returns the points earned. Outside IPython it grades the student's
source file instead. nbgrader gives a test cell partial credit when its last
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

This module imports only the standard library (and `autograder.check_report`,
which does too), so that the `import` of it in a graded notebook costs
nothing in the sandbox. `skip_if_not_implemented` lets the lab's
demonstration cells run while an exercise is still a stub.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import warnings
from typing import Any, Callable

from autograder import check_report

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

# The seven functions of the lab, as `lm-grade --list-tests` names them.
EXERCISES = (
    "softmax", "top_k", "greedy_next_token", "sample_next_token", "top_p_filter", "generate", "plot_next_token",
)


def _stop_grading_process(wait_seconds: float = 0.0) -> None:
    global _grading_process
    if _grading_process is not None:
        _grading_process.stop(wait_seconds=wait_seconds)
        _grading_process = None


atexit.register(_stop_grading_process, wait_seconds=5.0)


def _ipython_shell():
    """Return the running IPython shell, or None in a plain Python process."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


# For each cell that raised, run after this module was imported: its
# execution count and the line of the top-level statement that raised (0 when
# the cell did not run at all, e.g. on a syntax error).
_failed_cells: dict[int, int] = {}


def _record_failed_cell(result) -> None:
    """Remember where a cell raised (an IPython `post_run_cell` callback)."""
    if result.success or result.execution_count is None:
        return
    line = 0
    error = result.error_in_exec
    traceback = error.__traceback__ if error is not None else None
    while traceback is not None:
        # The cell's own code runs as a module; deeper frames are the functions it called.
        if traceback.tb_frame.f_code.co_name == "<module>":
            line = traceback.tb_lineno
            break
        traceback = traceback.tb_next
    _failed_cells[result.execution_count] = line


def _watch_failed_cells() -> None:
    # Without IPython loaded there is no shell, and importing it would slow the sandbox down.
    if "IPython" not in sys.modules:
        return
    shell = _ipython_shell()
    events = getattr(shell, "events", None)
    if events is not None and _record_failed_cell not in events.callbacks.get("post_run_cell", []):
        events.register("post_run_cell", _record_failed_cell)


def _statements_before(shell, cell: str, line: int) -> str:
    """Return the top-level statements of `cell` that end before `line`: those the kernel completed."""
    try:
        source = shell.transform_cell(cell)  # IPython magics and shell lines to Python
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    lines = source.splitlines()
    completed = [node for node in tree.body if node.end_lineno < line]
    return "\n".join(lines[:completed[-1].end_lineno]) if completed else ""


def _kernel_cells(shell) -> list[str]:
    """Return the source of the cells the IPython shell has run, in order.

    Of a cell that raised, only the statements before the one that raised
    are kept, as the kernel ran them. The statement that raised (often an
    import or an assignment that the student has since fixed in another
    cell) would otherwise fail the whole notebook again in the grader.
    """
    # Entry 0 is an empty placeholder; a re-run cell appears again, and its later definitions win.
    cells = []
    for count, cell in enumerate(shell.history_manager.input_hist_raw):
        if count in _failed_cells:
            cell = _statements_before(shell, cell, _failed_cells[count])
        if count > 0 and cell.strip():
            cells.append(cell)
    return cells


def _defining_file(function: Callable[..., Any] | None) -> str | None:
    """Return the file on disk that defines `function`, or None (a notebook cell, a builtin, a REPL)."""
    if function is None:
        return None
    try:
        path = inspect.getsourcefile(function)
    except TypeError:  # a builtin or a callable object without a source file
        return None
    # ipykernel names cell code after files in its temporary folder that are not on disk.
    return os.path.abspath(path) if path and os.path.isfile(path) else None


def _source_file(function: Callable[..., Any] | None) -> str:
    """Return the file to grade outside IPython: the one defining `function`, else `__main__`'s file.

    Raises:
      RuntimeError: neither names a file on disk (e.g. in a plain Python REPL).
    """
    candidates = [_defining_file(function), getattr(sys.modules.get("__main__"), "__file__", None)]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return os.path.abspath(candidate)
    raise RuntimeError(
        "check() grades the cells of a notebook or the file that defines the function; here neither "
        "was found. Save your functions in lab3_transformer.py and run `python lab3_transformer.py`, "
        "or grade the file with `lm-grade --public-only lab3_transformer.py`."
    )


def _in_kernel(shell) -> bool:
    """True in a Jupyter kernel, where rich (HTML) output can be displayed."""
    return shell is not None and getattr(shell, "kernel", None) is not None


def _hint_call(exercise: str, function: Callable[..., Any] | None) -> str:
    argument = f", {getattr(function, '__name__', exercise)}" if function is not None else ""
    return f'check("{exercise}"{argument}, hint=True)'


def check(
    exercise: str,
    function: Callable[..., Any] | None = None,
    *,
    hint: bool = False,
    hidden: bool = False,
    model_name: str = DEFAULT_MODEL,
) -> float:
    """Grade `exercise` with the kit's checks, show the feedback and return the points.

    In IPython (a notebook, nbgrader or the IPython shell) the code graded is
    every cell run so far. In a plain Python process it is the file that
    defines `function`, or else the script being run (`__main__.__file__`).
    The verdicts are those of `lm-grade` (`--public-only` for public checks).

    A pass shows one line. A failure shows one box per failed check: HTML
    in a notebook (hints behind a "Hint" toggle, and a plain-text copy for
    other viewers), a text box elsewhere (hints only with `hint=True`).
    An exercise whose every check fails on `NotImplementedError` is
    reported as not implemented yet.

    Args:
      exercise: the function under test, e.g. "softmax" (as `lm-grade --list-tests` names it).
      function: the student's function; optional, it names the file to
        grade outside IPython and the call shown in "run check(...)" lines.
      hint: show the hints of failed checks.
      hidden: run the exercise's hidden checks instead of its public ones.
      model_name: the model the checks use, as `lm_support.load_model` names it.

    Returns:
      The points earned, which nbgrader reads as the test cell's partial credit.

    Raises:
      ValueError: `exercise` is not one of `EXERCISES`.
      GradingServiceError: the grading process failed; the message contains the tail of its log.
      RuntimeError: outside IPython, no source file to grade was found.
    """
    if exercise not in EXERCISES:
        raise ValueError(f"Unknown exercise {exercise!r}: check() takes one of {', '.join(EXERCISES)}.")
    if function is not None and not callable(function):
        raise TypeError(f"check()'s second argument must be your function, got {function!r}")
    name = getattr(function, "__name__", exercise)
    if function is not None and name != exercise:
        raise ValueError(
            f"check({exercise!r}, {name}) grades your function named {exercise}(), not {name}: "
            f"call check({exercise!r}, {exercise}), or check({exercise!r}) when {exercise} is another name for it."
        )

    shell = _ipython_shell()
    defining_file = _defining_file(function)
    if defining_file is not None or shell is None or getattr(shell, "history_manager", None) is None:
        # A script, `%run script.py` or `ipython script.py`: the file is the submission.
        code = {"path": _source_file(function)}
    else:
        code = {"cells": _kernel_cells(shell)}

    # A Python warning would go to stderr and cost the whole cell: show it on stdout instead.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reply = _request_grading(exercise, hidden, model_name, code)
    for warning in caught:
        print(f"Warning while grading: {warning.category.__name__}: {warning.message}")

    report = check_report.report_from_reply(reply)
    text = check_report.render_text(report, show_hints=hint, hint_call=_hint_call(exercise, function))
    if _in_kernel(shell):
        from IPython.display import display

        html = check_report.render_html(report, show_hints=hint)
        display({"text/plain": text, "text/html": html}, raw=True)
    else:
        print(text)
    return report.earned


class skip_if_not_implemented(contextlib.AbstractContextManager):  # noqa: N801  (used like a function)
    """Let a demonstration cell end quietly while an exercise is still a stub.

    `with skip_if_not_implemented(): ...` catches `NotImplementedError`
    only, also when it comes from a function that the block calls
    indirectly, and prints which function is not implemented yet. Every
    other exception propagates.
    """

    def __exit__(self, exc_type, exc_value, traceback) -> bool:
        if exc_type is None or not issubclass(exc_type, NotImplementedError):
            return False
        # The innermost frame is the stub that raised, e.g. `top_k` called by `plot_next_token`.
        name = "This exercise"
        while traceback is not None:
            name = f"{traceback.tb_frame.f_code.co_name}()"
            traceback = traceback.tb_next
        print(f"{name} is not implemented yet: write it above and run this cell again.")
        return True


def _request_grading(exercise: str, hidden: bool, model_name: str, code: dict[str, Any]) -> dict[str, Any]:
    global _grading_process
    if _grading_process is None:
        print("Starting the grader and loading the model (once per kernel or script, about a minute)...", flush=True)
        _grading_process = _GradingProcess()
    request = {"exercise": exercise, "hidden": bool(hidden), "model_name": model_name, **code}
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


_watch_failed_cells()

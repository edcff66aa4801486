"""Render the result of one `check(...)` call as plain text and as HTML.

A reply of the grading process (`autograder.nbgrader_service`) becomes an
`ExerciseReport`: a pass line when every check passed, "<name> is not
implemented yet" when every check failed on `NotImplementedError`, or one
feedback box per failed check with its title, the kit's message with the
model's real numbers and a hint.

This module imports only the standard library, because graded notebooks
import it (through `autograder.nbgrader_cells`) inside the sandbox.
"""

from __future__ import annotations

import dataclasses
import html
import re
import textwrap
from typing import Any

NOT_IMPLEMENTED = "not implemented"
PASSED = "passed"

# `autograder.feedback.CheckFailed.render` writes the hint as the line "Hint:     ...".
_HINT_LINE = re.compile(r"^Hint:\s*(?P<hint>.*)$", flags=re.MULTILINE)
_RULE = "+" + "-" * 71
# Control characters other than newline and tab, which could move a terminal's cursor or colour its text.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclasses.dataclass(frozen=True)
class CheckFeedback:
    """One check of an exercise, as shown to the student."""

    title: str
    status: str  # passed | failed | not implemented | error
    score: float
    max_score: float
    details: str  # Checked/Expected/Received lines or the error, without the hint
    hint: str


@dataclasses.dataclass(frozen=True)
class ExerciseReport:
    """The outcome of one exercise's public or hidden checks."""

    exercise: str
    hidden: bool
    checks: list[CheckFeedback]
    notes: list[str]
    hidden_points: float  # points of the hidden checks, not run by a public check

    @property
    def earned(self) -> float:
        return round(sum(check.score for check in self.checks), 6)

    @property
    def available(self) -> float:
        return round(sum(check.max_score for check in self.checks), 6)

    @property
    def passed(self) -> bool:
        return all(check.status == PASSED for check in self.checks)

    @property
    def not_implemented(self) -> bool:
        """True when every check failed because the function raises `NotImplementedError`."""
        return bool(self.checks) and all(check.status == NOT_IMPLEMENTED for check in self.checks)

    @property
    def visibility(self) -> str:
        return "hidden" if self.hidden else "public"


def split_hint(output: str) -> tuple[str, str]:
    """Split a check's output into (details, hint); the hint is "" when the output has none."""
    # The kit writes its hint last, so a "Hint:" line in student text before it is details.
    matches = list(_HINT_LINE.finditer(output))
    match = matches[-1] if matches else None
    if match is None:
        return output.rstrip(), ""
    details = (output[: match.start()] + output[match.end():]).strip("\n")
    return details.rstrip(), match["hint"].strip()


def report_from_reply(reply: dict[str, Any]) -> ExerciseReport:
    """Build an `ExerciseReport` from a grading process reply."""
    checks = []
    for test in reply["tests"]:
        details, hint = split_hint(test["output"] or "")
        checks.append(CheckFeedback(test["title"], test["status"], float(test["score"]),
                                    float(test["max_score"]), details, hint))
    return ExerciseReport(reply["exercise"], bool(reply["hidden"]), checks, list(reply["notes"]),
                          float(reply["hidden_points"]))


def format_points(value: float) -> str:
    return f"{value:g}"


def _summary(report: ExerciseReport) -> str:
    points = f"{format_points(report.earned)} of {format_points(report.available)} points"
    if report.not_implemented:
        return f"{report.exercise} is not implemented yet ({points})."
    if report.passed and len(report.checks) == 1:
        return f"PASS {report.exercise}: the {report.visibility} check passes ({points})."
    if report.passed:
        return f"PASS {report.exercise}: all {len(report.checks)} {report.visibility} checks pass ({points})."
    failed = sum(check.status != PASSED for check in report.checks)
    return (f"FAIL {report.exercise}: {failed} of {len(report.checks)} {report.visibility} checks fail "
            f"({points}).")


def _hidden_points_line(report: ExerciseReport) -> str:
    if report.hidden or not report.hidden_points:
        return ""
    return (f"{format_points(report.hidden_points)} more points of {report.exercise} come from hidden checks, "
            "which run when your work is graded.")


def _check_line(check: CheckFeedback) -> str:
    mark = "PASS" if check.status == PASSED else "FAIL"
    return f"{mark} {format_points(check.score)}/{format_points(check.max_score)}  {check.title}"


def render_text(report: ExerciseReport, *, show_hints: bool, hint_call: str) -> str:
    """Render the report as a plain-text box.

    Hints are printed when `show_hints` is true. Otherwise each failed
    check that has a hint shows `hint_call`, the call that prints it.
    """
    lines = [_summary(report)]
    if report.not_implemented:
        lines.append("Replace `raise NotImplementedError()` with your code, run that cell, then this check again.")
    elif not report.passed:
        for check in report.checks:
            lines.append(_check_line(check))
            if check.status == PASSED:
                continue
            if check.details:
                lines.append(textwrap.indent(check.details, "    "))
            if check.hint and show_hints:
                lines.append(f"    Hint:     {check.hint}")
            elif check.hint:
                lines.append(f"    A hint is available: run {hint_call}")
    hidden_line = _hidden_points_line(report)
    if hidden_line:
        lines.append(hidden_line)
    for note in report.notes:
        lines.append(textwrap.indent(note, "! ", predicate=lambda line: True))

    text = _CONTROL_CHARACTER.sub(lambda match: f"\\x{ord(match.group()):02x}", "\n".join(lines))
    if report.passed and not report.notes:
        return text  # a pass is one clear line, without a box
    return "\n".join([_RULE, *("| " + line if line else "|" for line in text.splitlines()), _RULE])


_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "todo": "#9e6a00"}


def _box(colour: str, content: str) -> str:
    return (f'<div style="border:2px solid {colour};border-radius:6px;padding:6px 12px;margin:4px 0;'
            f'font-family:sans-serif">{content}</div>')


def render_html(report: ExerciseReport, *, show_hints: bool) -> str:
    """Render the report as HTML: one box per failed check, the hint inside a `<details>` element.

    With `show_hints`, every hint is shown open.
    """
    escape = html.escape
    if report.not_implemented:
        colour = _COLOURS["todo"]
    else:
        colour = _COLOURS["pass"] if report.passed else _COLOURS["fail"]
    parts = [f'<div style="font-weight:bold;color:{colour}">{escape(_summary(report))}</div>']
    if report.not_implemented:
        parts.append("<div>Replace <code>raise NotImplementedError()</code> with your code, run that cell, "
                     "then this check again.</div>")
    elif not report.passed:
        for check in report.checks:
            if check.status == PASSED:
                parts.append(f'<div style="color:{_COLOURS["pass"]}"><code>{escape(_check_line(check))}</code></div>')
                continue
            box = [f"<div><b>{escape(_check_line(check))}</b></div>"]
            if check.details:
                box.append(f'<pre style="white-space:pre-wrap;margin:4px 0">{escape(check.details)}</pre>')
            if check.hint:
                opened = " open" if show_hints else ""
                box.append(f"<details{opened}><summary>Hint</summary>{escape(check.hint)}</details>")
            parts.append(f'<div style="border-left:4px solid {colour};background:#fdf3f3;padding:4px 8px;'
                         f'margin:6px 0">{"".join(box)}</div>')
    hidden_line = _hidden_points_line(report)
    if hidden_line:
        parts.append(f'<div style="color:#555">{escape(hidden_line)}</div>')
    for note in report.notes:
        parts.append(f'<pre style="white-space:pre-wrap;color:#555">{escape(note)}</pre>')
    return _box(colour, "".join(parts))

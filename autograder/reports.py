"""Report writers, one per output format: text, json, gradescope and junit."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from typing import TYPE_CHECKING

from autograder.channel import clean_text

if TYPE_CHECKING:
    from autograder.grading import GradeReport

FORMATS = ("text", "json", "gradescope", "junit")


# Control characters other than newline and tab: terminal escape sequences
# in student output could hide or fake the score, and XML 1.0 forbids them.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Replace control characters and lone surrogates in student-controlled text with U+FFFD."""
    return _CONTROL_CHARACTERS.sub("\ufffd", clean_text(text))


def _points(value: float) -> str:
    return f"{value:g}"


def _indented(text: str) -> list[str]:
    return [f"  {line}" for line in printable(text).splitlines()]


def to_text(report: GradeReport) -> str:
    """Render a score table followed by the feedback of each test that lost points."""
    width = max((len(test.name) for test in report.tests), default=10)
    lines = [f"Submission: {printable(repr(report.submission))}", ""]
    for test in report.tests:
        mark = "PASS" if test.status == "passed" else "FAIL"
        lines.append(f"{mark}  {test.name:<{width}}  {_points(test.score):>4} / {_points(test.max_score)}")
    lines.append("")
    lines.append(f"Score: {_points(report.score)} / {_points(report.max_score)}")

    failures = [test for test in report.tests if test.status != "passed"]
    if failures:
        lines += ["", "Feedback", "--------"]
    reported_not_implemented = set()
    previous_output = None
    for test in failures:
        # One line for an exercise that is not started, not one per test.
        if test.status == "not implemented":
            if test.exercise in reported_not_implemented:
                continue
            reported_not_implemented.add(test.exercise)
            lines += [f"[{test.exercise}] {test.output.splitlines()[0]}", ""]
            continue
        unit = "point" if test.max_score == 1 else "points"
        if test.output and test.output == previous_output:
            lines.insert(len(lines) - 1, f"[{test.name}] ({_points(test.max_score)} {unit}): the same")
            continue
        lines.append(f"[{test.name}] ({_points(test.max_score)} {unit})")
        lines += _indented(test.output or "No details.")
        lines.append("")
        previous_output = test.output
    # Notes may quote student output: indented, so they cannot pass for a score line.
    for note in report.notes:
        lines += ["", "Note:", *_indented(note)]
    return "\n".join(lines).rstrip() + "\n"


def to_json(report: GradeReport) -> str:
    """Render one JSON object in Gradescope's `results.json` layout."""
    payload = {
        "score": report.score,
        "max_score": report.max_score,
        "execution_time": round(report.execution_seconds, 3),
        "output": printable("\n\n".join(report.notes)),
        "tests": [
            {
                "name": test.name,
                "score": test.score,
                "max_score": test.max_score,
                "status": "passed" if test.status == "passed" else "failed",
                "output": printable(test.output),
                "visibility": test.visibility,
                "tags": [test.exercise],
            }
            for test in report.tests
        ],
    }
    return json.dumps(payload, indent=2) + "\n"


def to_gradescope(report: GradeReport) -> str:
    """Render Gradescope's results.json, with every output shown as plain text."""
    payload = json.loads(to_json(report))
    payload.pop("max_score")  # not a results.json field: Gradescope totals the tests' max_score
    # Gradescope renders outputs as HTML unless the format fields say text.
    payload.update(output_format="text", test_output_format="text", test_name_format="text",
                   stdout_visibility="hidden")
    return json.dumps(payload, indent=2) + "\n"


def to_junit(report: GradeReport) -> str:
    """JUnit XML, one test case per check, for CI systems."""
    failures = sum(test.status != "passed" for test in report.tests)
    suite = ElementTree.Element(
        "testsuite", name="lm-grade", tests=str(len(report.tests)), failures=str(failures),
        time=f"{report.execution_seconds:.3f}",
    )
    for test in report.tests:
        case = ElementTree.SubElement(suite, "testcase", classname=test.exercise, name=test.name)
        ElementTree.SubElement(case, "properties").extend([
            ElementTree.Element("property", name="score", value=_points(test.score)),
            ElementTree.Element("property", name="max_score", value=_points(test.max_score)),
        ])
        if test.status != "passed":
            failure = ElementTree.SubElement(case, "failure", message=test.status)
            failure.text = printable(test.output)
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def render(report: GradeReport, output_format: str) -> str:
    if output_format == "text":
        return to_text(report)
    if output_format == "json":
        return to_json(report)
    if output_format == "gradescope":
        return to_gradescope(report)
    if output_format == "junit":
        return to_junit(report)
    raise ValueError(f"Unknown format {output_format!r}; choose one of {', '.join(FORMATS)}.")

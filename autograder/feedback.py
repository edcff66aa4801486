"""Failure messages for students: what was checked, expected, received, and a hint."""

from __future__ import annotations

import numpy as np

_MAX_VALUE_CHARS = 600


class CheckFailed(AssertionError):
    """A check of the student's output failed; the message is the feedback."""

    def __init__(self, what: str, expected: object, received: object, hint: str | None = None):
        self.what = what
        self.expected = describe(expected)
        self.received = describe(received)
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"Checked:  {self.what}", f"Expected: {self.expected}", f"Received: {self.received}"]
        if self.hint:
            lines.append(f"Hint:     {self.hint}")
        return "\n".join(lines)


def check(condition: bool, what: str, expected: object, received: object, hint: str | None = None) -> None:
    """Raise `CheckFailed` unless `condition` holds."""
    if not condition:
        raise CheckFailed(what, expected, received, hint)


def describe(value: object) -> str:
    """Render a value shortly and readably for feedback."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, np.ndarray):
        with np.printoptions(precision=6, threshold=12, edgeitems=4, suppress=True):
            text = f"array of shape {value.shape}, dtype {value.dtype}: {value}"
    else:
        text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[:_MAX_VALUE_CHARS] + " ..."
    return text


def format_top_tokens(token_ids, probabilities, decode) -> str:
    """Render tokens with their probabilities, e.g. `' water' 0.2038, ' a' 0.1631`."""
    return ", ".join(f"{decode(int(i))!r} {float(p):.4f}" for i, p in zip(token_ids, probabilities))

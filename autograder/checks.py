"""Helpers for the grading suites: lab prompts, real next-token distributions
and conversions of returned values that fail with feedback."""

from __future__ import annotations

import dataclasses

import numpy as np
from autograder import reference_ops
from autograder.feedback import CheckFailed, format_top_tokens

HUNGRY = "Jide was hungry so she went looking for"
THIRSTY = "Jide was thirsty so she went looking for"
OTHER_PROMPTS = (
    "The capital of France is",
    "Once upon a time, in a small village,",
)


@dataclasses.dataclass(frozen=True)
class NextToken:
    """The model's next-token distribution after one prompt."""

    prompt: str
    token_ids: list[int]
    logits: np.ndarray  # float32, shape (V,)
    probs: np.ndarray  # float64 reference softmax of `logits`
    decode: object

    def top(self, count: int = 5) -> str:
        """The `count` most probable tokens with their probabilities, as text."""
        ids, values = reference_ops.top_k(self.probs, count)
        return format_top_tokens(ids, values, self.decode)


class Lab:
    """Next-token distributions of the real model, computed once per run."""

    def __init__(self, model):
        self.model = model
        self._cache: dict[str, NextToken] = {}

    def __call__(self, prompt: str) -> NextToken:
        if prompt not in self._cache:
            token_ids = self.model.tokenizer.encode(prompt, add_bos=True)
            logits = self.model.next_token_logits(token_ids)
            self._cache[prompt] = NextToken(
                prompt, token_ids, logits, reference_ops.softmax(logits), self.model.tokenizer.decode
            )
        return self._cache[prompt]


def as_array(value, what: str, ndim: int | None = None) -> np.ndarray:
    """Convert a returned value to a numeric array, or fail with feedback."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype.name == "bfloat16" or array.dtype == bool
    ):
        raise CheckFailed(what, "a numeric array (NumPy array, JAX array or list of numbers)", value)
    if ndim is not None and array.ndim != ndim:
        raise CheckFailed(what, f"an array with {ndim} dimension(s)", f"shape {array.shape}")
    return array


def as_token_id(value, what: str) -> int:
    """Accept an int (or an integer 0-D array, e.g. from `np.argmax`) as a token id."""
    if isinstance(value, bool):
        raise CheckFailed(what, "a token id (an int)", value)
    if isinstance(value, int):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.integer):
        return int(value)
    raise CheckFailed(what, "a token id (an int)", value, hint="Return int(token_id).")

"""Helpers for the grading suites: lab prompts, real next-token distributions
and conversions of returned values that fail with feedback."""

from __future__ import annotations

import collections
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
        """Format the `count` most probable tokens with their probabilities."""
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


# Each statistical test wrongly fails a correct sampler with probability at
# most this (the chi-square test's significance level).
FALSE_FAILURE_PROBABILITY = 1e-6
MIN_EXPECTED_COUNT = 5  # per chi-square bin, so the chi-square approximation is valid


def chi_square_p_value(draws: np.ndarray, probs: np.ndarray) -> tuple[float, list[tuple[str, int, float]]]:
    """Test whether `draws` (token ids) follow `probs`.

    Tokens whose expected count is at least `MIN_EXPECTED_COUNT` get a bin
    each; the rest share an "other" bin. Returns the p-value of Pearson's
    chi-square statistic and the bins as (label, observed, expected).
    """
    from scipy import stats

    count = draws.size
    expected = probs * count
    order = np.argsort(-probs, kind="stable")
    own_bins = [int(i) for i in order if expected[i] >= MIN_EXPECTED_COUNT]
    observed_counts = np.bincount(draws, minlength=probs.size)
    bins = [(f"token {i}", int(observed_counts[i]), float(expected[i])) for i in own_bins]
    rest_observed = count - sum(observed for _, observed, _ in bins)
    rest_expected = count - sum(expected_count for _, _, expected_count in bins)
    if rest_expected >= MIN_EXPECTED_COUNT:
        bins.append(("other", int(rest_observed), float(rest_expected)))
    elif rest_observed and bins:
        # Too rare to test alone: merge into the last bin.
        label, observed, expected_count = bins[-1]
        bins[-1] = (label + " and others", observed + rest_observed, expected_count + rest_expected)
    observed = np.array([b[1] for b in bins], dtype=np.float64)
    expected_bins = np.array([b[2] for b in bins], dtype=np.float64)
    statistic = float(np.sum((observed - expected_bins) ** 2 / expected_bins))
    return float(stats.chi2.sf(statistic, df=len(bins) - 1)), bins


class ScriptedModel:
    """A stand-in model with chosen logits, for properties the real model cannot show.

    `logits_for_step(step)` returns the logits for generation step `step`
    (0 for the first new token). The real tokenizer is used, so decoded text
    is real text.
    """

    def __init__(self, tokenizer, logits_for_step, name: str = "scripted"):
        self.name = name
        self.tokenizer = tokenizer
        self.vocab_size = int(tokenizer.vocab_size)
        self._logits_for_step = logits_for_step
        self._prompt_length: int | None = None

    def start(self, prompt: str) -> None:
        self._prompt_length = len(self.tokenizer.encode(prompt))

    def next_token_logits(self, token_ids) -> np.ndarray:
        # The step counts the tokens after the prompt, with or without a
        # leading BOS. A loop that leaves out BOS then gets the same scripted
        # logits, and only the checks about BOS fail for it.
        ids = list(token_ids)
        prompt_length = self._prompt_length if self._prompt_length is not None else len(ids)
        has_bos = bool(ids) and int(ids[0]) == self.tokenizer.special_tokens.BOS
        step = max(len(ids) - prompt_length - int(has_bos), 0)
        return np.asarray(self._logits_for_step(step), dtype=np.float32)


def one_hot_logits(vocab_size: int, token_id: int) -> np.ndarray:
    logits = np.full(vocab_size, -30.0, dtype=np.float32)
    logits[token_id] = 30.0
    return logits


def word_token_ids(tokenizer, words) -> list[int]:
    """The id of each word, which must be a single token."""
    ids = []
    for word in words:
        encoded = tokenizer.encode(word)
        if len(encoded) != 1:
            raise ValueError(f"{word!r} is not a single token")
        ids.append(encoded[0])
    return ids


def expect_value_error(student, function: str, *args, what: str, hint: str | None = None) -> None:
    """Check that `function(*args)` raises ValueError in the submission."""
    from autograder.sandbox import StudentError

    try:
        result = student.call(function, *args)
    except StudentError as error:
        if error.error_type == "NotImplementedError":
            raise  # reported as "not implemented yet"
        if error.error_type != "ValueError":
            raise CheckFailed(what, "ValueError", f"{error.error_type}: {error.message}", hint) from None
    else:
        raise CheckFailed(what, "ValueError", f"returned {result!r}", hint)


class CachedModel:
    """A `LanguageModel` that remembers the logits of recent contexts.

    Tests compare the student's generation loop with the grader's, and both
    ask for the same contexts: the second time, the logits come from here
    instead of another forward pass.
    """

    def __init__(self, model, max_entries: int = 256):
        self.model = model
        self.name = model.name
        self.tokenizer = model.tokenizer
        self.vocab_size = model.vocab_size
        self._logits: collections.OrderedDict[tuple[int, ...], np.ndarray] = collections.OrderedDict()
        self._max_entries = max_entries

    def next_token_logits(self, token_ids) -> np.ndarray:
        key = tuple(int(token_id) for token_id in token_ids)
        if key in self._logits:
            self._logits.move_to_end(key)
        else:
            self._logits[key] = self.model.next_token_logits(key)
            if len(self._logits) > self._max_entries:
                self._logits.popitem(last=False)
        return self._logits[key].copy()

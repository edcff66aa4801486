"""top_k: the k most probable tokens, most probable first."""

import numpy as np
import pytest

from autograder import reference_ops
from autograder.checks import HUNGRY, THIRSTY, as_array, expect_value_error
from autograder.feedback import CheckFailed, check

pytestmark = pytest.mark.exercise("top_k")


def _unpack(result, what):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise CheckFailed(what, "a pair (token_ids, values)", result)
    ids = as_array(result[0], what + ", token_ids", ndim=1)
    values = as_array(result[1], what + ", values", ndim=1)
    return ids, values


MAX_LISTED_ITEMS = 8  # items that a message lists from a longer list


def _first_items(items) -> str:
    """Format the first `MAX_LISTED_ITEMS` items of a list, with the list's length when it is cut."""
    listed = ", ".join(str(item) for item in items[:MAX_LISTED_ITEMS])
    if len(items) <= MAX_LISTED_ITEMS:
        return f"[{listed}]"
    return f"[{listed}, ...] (the first {MAX_LISTED_ITEMS} of {len(items)})"


def _check_top_k(student, probs, k, what, decode=None):
    expected_ids, expected_values = reference_ops.top_k(probs, k)
    ids, values = _unpack(student.top_k(probs, k), what)
    check(ids.shape == (k,) and values.shape == (k,), what, f"{k} ids and {k} values",
          f"{ids.shape[0]} ids and {values.shape[0]} values")
    if not np.issubdtype(ids.dtype, np.integer) and np.issubdtype(values.dtype, np.integer):
        raise CheckFailed(what, "(token_ids, values)", "(values, token_ids)",
                          "Return the ids first, then their probabilities.")

    expected_text = f"token ids {_first_items([int(i) for i in expected_ids])}"
    if decode is not None:
        expected_text += f", tokens {_first_items([repr(decode(int(i))) for i in expected_ids])}"
    check(np.array_equal(ids.astype(np.int64), expected_ids), what, expected_text,
          f"token ids {_first_items([int(i) for i in ids])}",
          "Sort by value, largest first; on equal values the lower token id comes first.")
    check(np.allclose(values.astype(np.float64), expected_values, rtol=1e-6, atol=0), what,
          f"values {_first_items([float(v) for v in expected_values])}",
          f"values {_first_items([float(v) for v in values])}",
          "Return probs[token_ids] in the same order as the ids.")


@pytest.mark.points(4)
def test_real_distribution(student, lab):
    """Top 5 tokens after the hungry prompt, ids and values."""
    nxt = lab(HUNGRY)
    _check_top_k(student, nxt.probs, 5, f"top_k(probs, 5) after {HUNGRY!r}; the model's top 5: {nxt.top()}",
                 decode=nxt.decode)


@pytest.mark.points(3)
@pytest.mark.hidden
def test_k_one_and_k_vocabulary(student, lab):
    """k = 1 and k = len(probs)."""
    _check_top_k(student, lab(THIRSTY).probs, 1, f"top_k(probs, 1) after {THIRSTY!r}", decode=lab(THIRSTY).decode)
    # Values at least 1e-4 apart, so float32 implementations order them alike.
    spread = np.random.default_rng(0).permutation(np.linspace(1.0, 2.0, 200))
    spread /= spread.sum()
    _check_top_k(student, spread, spread.size, "top_k(probs, k=len(probs)) on a 200-token distribution")


@pytest.mark.points(3)
@pytest.mark.hidden
def test_ties_lower_id_first(student):
    """Equal values keep the lower token id first."""
    probs = np.array([0.1, 0.3, 0.1, 0.3, 0.2], dtype=np.float64)
    _check_top_k(student, probs, 4, "top_k([0.1, 0.3, 0.1, 0.3, 0.2], 4)")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_many_tokens_ordered(student, lab):
    """Top 50 of real logits (not probabilities) in order."""
    logits = lab(HUNGRY).logits
    _check_top_k(student, logits, 50, "top_k(logits, 50) on raw logits after the hungry prompt")


@pytest.mark.points(2)
def test_invalid_k(student):
    """k outside 1..len(probs) raises ValueError."""
    probs = np.array([0.5, 0.25, 0.25])
    for k in (0, -1, 4):
        expect_value_error(student, "top_k", probs, k, what=f"top_k(probs of length 3, k={k})",
                           hint="Check k before selecting: raise ValueError for k < 1 or k > len(probs).")

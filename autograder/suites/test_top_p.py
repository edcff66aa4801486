"""top_p_filter: keep the most probable tokens up to probability top_p."""

import numpy as np
import pytest

from autograder import reference_ops
from autograder.checks import HUNGRY, THIRSTY, as_array, expect_value_error
from autograder.feedback import check

pytestmark = pytest.mark.exercise("top_p_filter")


def _clear_of_boundaries(probs, top_p, margin=1e-4):
    """Move top_p away from any running total, where rounding decides the result."""
    totals = np.cumsum(np.sort(probs)[::-1])[:2000]
    while np.min(np.abs(totals - top_p)) < margin:
        top_p -= 10 * margin
    return top_p


def _check_filter(student, probs, top_p, what, hint=None):
    expected = reference_ops.top_p_filter(probs, top_p)
    received = as_array(student.top_p_filter(probs, top_p), what, ndim=1).astype(np.float64)
    check(received.shape == expected.shape, what, f"shape {expected.shape}", f"shape {received.shape}")
    # Tokens below 1e-9 are left out of the comparison: whether rounding in a
    # running total keeps them is not what this exercise is about.
    significant = np.asarray(probs) > 1e-9
    kept = np.flatnonzero((expected > 0) & significant)
    received_kept = np.flatnonzero((received > 0) & significant)
    check(np.array_equal(kept, received_kept), what,
          f"{kept.size} tokens kept, ids {kept[:10].tolist()}",
          f"{received_kept.size} tokens kept, ids {received_kept[:10].tolist()}",
          hint or "Sort by probability; keep tokens until the running total reaches top_p, "
                  "including the token that crosses it.")
    check(abs(received.sum() - 1) <= 1e-5, what, "probabilities summing to 1", f"sum {received.sum():.6f}",
          "Renormalise: divide the kept probabilities by their total.")
    check(np.allclose(received, expected, rtol=1e-5, atol=1e-9), what, expected[kept][:6], received[kept][:6],
          "Each kept token keeps its relative probability: p_i / sum of kept p.")


@pytest.mark.points(5)
def test_real_distribution(student, lab):
    """Filters the real distribution after the hungry prompt."""
    nxt = lab(HUNGRY)
    top_p = _clear_of_boundaries(nxt.probs, 0.5)
    _check_filter(student, nxt.probs, top_p,
                  f"top_p_filter(probs, {top_p:g}) after {HUNGRY!r}; top tokens {nxt.top()}")


@pytest.mark.points(3)
@pytest.mark.hidden
def test_crossing_token_kept(student):
    """The token that crosses top_p is kept."""
    probs = np.array([0.2, 0.5, 0.3])
    _check_filter(student, probs, 0.6, "top_p_filter([0.2, 0.5, 0.3], 0.6)",
                  "0.5 alone is below 0.6, so the next token (0.3) is kept too: the result is [0, 0.625, 0.375].")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_peaked_keeps_one(student, lab):
    """A peaked distribution keeps one token."""
    probs = np.full(100, 0.04 / 99)
    probs[42] = 0.96
    _check_filter(student, probs, 0.9, "top_p_filter(probs with one token at 0.96, 0.9)")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_top_p_one_keeps_all(student, lab):
    """top_p = 1 keeps every token."""
    probs = lab(THIRSTY).probs
    _check_filter(student, probs, 1.0, f"top_p_filter(probs, 1.0) after {THIRSTY!r}",
                  "With top_p = 1 every token with non-zero probability stays.")


@pytest.mark.points(2)
def test_invalid_top_p(student):
    """top_p outside (0, 1] raises ValueError."""
    probs = np.array([0.5, 0.3, 0.2])
    for top_p in (0.0, -0.1, 1.5):
        expect_value_error(student, "top_p_filter", probs, top_p, what=f"top_p_filter(probs, {top_p})",
                           hint="Raise ValueError unless 0 < top_p <= 1.")

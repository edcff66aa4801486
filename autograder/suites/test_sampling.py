"""sample_next_token: one draw from softmax(logits / temperature), driven by a JAX key."""

import numpy as np
import pytest

from autograder import reference_ops
from autograder.checks import (
    FALSE_FAILURE_PROBABILITY, HUNGRY, THIRSTY, as_token_id, chi_square_p_value, expect_value_error,
)
from autograder.feedback import CheckFailed, check
from autograder.student import Key

pytestmark = pytest.mark.exercise("sample_next_token")

DRAWS = 3000
TOP_TOKENS = 64  # the statistical tests sample from the model's 64 most likely tokens


def _top_logits(lab, prompt):
    """The real logits of the most likely tokens, in token-id order."""
    logits = lab(prompt).logits
    ids = np.sort(np.argsort(-logits, kind="stable")[:TOP_TOKENS])
    return logits[ids].astype(np.float32)


def _check_distribution(student, logits, temperature, seeds_from, what):
    seeds = list(range(seeds_from, seeds_from + DRAWS))
    values = student.call_with_keys("sample_next_token", logits, Key(0), temperature, seeds=seeds)
    draws = np.array([as_token_id(v, what) for v in values])
    check(bool(np.all((draws >= 0) & (draws < logits.size))), what, f"token ids in [0, {logits.size})",
          f"ids from {draws.min()} to {draws.max()}")
    probs = reference_ops.softmax(logits.astype(np.float64) / temperature)
    p_value, bins = chi_square_p_value(draws, probs)
    if p_value < FALSE_FAILURE_PROBABILITY:
        rows = ", ".join(f"{label}: {observed} vs {expected:.0f}" for label, observed, expected in bins[:6])
        raise CheckFailed(
            f"{what}: {DRAWS} draws with different keys, compared with softmax(logits / {temperature}) "
            f"by a chi-square test (a correct sampler fails it with probability {FALSE_FAILURE_PROBABILITY:g})",
            "counts close to the expected counts",
            f"observed vs expected counts {rows} (p-value {p_value:.2g})",
            "Divide the logits by the temperature, then draw with jax.random.categorical(rng, scaled_logits).",
        )


@pytest.mark.points(3)
def test_same_key_same_token(student, lab):
    """The same key gives the same token."""
    logits = lab(THIRSTY).logits
    what = f"sample_next_token(logits, jax.random.key(7)) twice, after {THIRSTY!r}"
    first = as_token_id(student.sample_next_token(logits, Key(7)), what)
    second = as_token_id(student.sample_next_token(logits, Key(7)), what)
    check(first == second, what, "the same token id twice", f"{first} then {second}",
          "Draw only with the rng key you are given (jax.random.categorical(rng, ...)).")


@pytest.mark.points(5)
def test_distribution_temperature_one(student, lab):
    """Draws follow softmax(logits) at temperature 1."""
    _check_distribution(student, _top_logits(lab, HUNGRY), 1.0, 10_000,
                        f"sample_next_token(top-{TOP_TOKENS} logits after {HUNGRY!r}, key, 1.0)")


@pytest.mark.points(4)
@pytest.mark.hidden
def test_distribution_other_temperatures(student, lab):
    """Draws follow softmax(logits / T) at T = 0.5 and T = 2."""
    logits = _top_logits(lab, THIRSTY)
    for offset, temperature in enumerate((0.5, 2.0)):
        _check_distribution(student, logits, temperature, 20_000 + offset * DRAWS,
                            f"sample_next_token(top-{TOP_TOKENS} logits after {THIRSTY!r}, key, {temperature})")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_raw_prng_keys(student, lab):
    """jax.random.PRNGKey keys work and different keys vary."""
    logits = _top_logits(lab, HUNGRY)
    what = "sample_next_token(logits, jax.random.PRNGKey(seed)) for 40 seeds"
    values = student.call_with_keys("sample_next_token", logits, Key(0, typed=False), seeds=list(range(40)),
                                    typed=False)
    draws = {as_token_id(v, what) for v in values}
    check(len(draws) > 1, what, "several different tokens", f"always token {draws}",
          "Use the key you are given; a fixed seed gives the same token every time.")


@pytest.mark.points(1)
@pytest.mark.hidden
def test_only_the_key_matters(student, lab):
    """Repeated calls with one key agree (no global random state)."""
    logits = _top_logits(lab, THIRSTY)
    what = "sample_next_token(logits, jax.random.key(3)) called 30 times in a row"
    values = student.call_with_keys("sample_next_token", logits, Key(0), seeds=[3] * 30)
    draws = [as_token_id(v, what) for v in values]
    check(len(set(draws)) == 1, what, "the same token every time", f"tokens {sorted(set(draws))}",
          "Do not use np.random or the random module: the draw must depend only on the key.")


@pytest.mark.points(2)
def test_invalid_temperature(student, lab):
    """temperature <= 0 raises ValueError."""
    logits = _top_logits(lab, HUNGRY)
    for temperature in (0.0, -1.0):
        expect_value_error(student, "sample_next_token", logits, Key(1), temperature,
                           what=f"sample_next_token(logits, key, temperature={temperature})",
                           hint="Raise ValueError when temperature <= 0: dividing by it makes no sense.")

"""The chi-square sampling check: calibrated on correct samplers, sharp on wrong ones.

Runs `chi_square_p_value` on the real model's distribution with NumPy
samplers (fast), many times, to measure its false-failure rate.
"""

import numpy as np
import pytest

from autograder import reference_ops
from autograder.checks import FALSE_FAILURE_PROBABILITY, chi_square_p_value
from conftest import HUNGRY

DRAWS = 3000  # as in the suite
REPEATS = 2000


@pytest.fixture(scope="module")
def top_logits(model):
    logits = model.next_token_logits(model.tokenizer.encode(HUNGRY, add_bos=True))
    return logits[np.sort(np.argsort(-logits)[:64])].astype(np.float64)


def _p_values(probs_drawn, probs_expected, repeats, seed):
    generator = np.random.default_rng(seed)
    return np.array([
        chi_square_p_value(generator.choice(probs_drawn.size, size=DRAWS, p=probs_drawn), probs_expected)[0]
        for _ in range(repeats)
    ])


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_correct_sampler_never_fails_and_is_calibrated(top_logits, temperature):
    probs = reference_ops.softmax(top_logits / temperature)
    p_values = _p_values(probs, probs, REPEATS, seed=int(temperature * 10))
    assert np.count_nonzero(p_values < FALSE_FAILURE_PROBABILITY) == 0
    # Under the null hypothesis about 5% of p-values fall below 0.05; the
    # bounds are 5 standard deviations of a binomial(2000, 0.05) count.
    assert 0.025 < np.mean(p_values < 0.05) < 0.075


@pytest.mark.parametrize("wrong_temperature, temperature", [(1.0, 0.5), (1.0, 2.0), (2.0, 0.5)])
def test_wrong_temperature_always_fails(top_logits, wrong_temperature, temperature):
    drawn = reference_ops.softmax(top_logits / wrong_temperature)
    expected = reference_ops.softmax(top_logits / temperature)
    p_values = _p_values(drawn, expected, 200, seed=7)
    assert np.all(p_values < FALSE_FAILURE_PROBABILITY)

"""greedy_next_token: the id of the largest logit."""

import numpy as np
import pytest

from autograder.checks import HUNGRY, OTHER_PROMPTS, THIRSTY, as_token_id
from autograder.feedback import check

pytestmark = pytest.mark.exercise("greedy_next_token")


def _check_greedy(student, logits, what, decode=None):
    expected = int(np.argmax(logits))
    received = as_token_id(student.greedy_next_token(logits), what)
    label = (lambda i: f"{i} ({decode(i)!r})") if decode else str
    check(received == expected, what, label(expected), label(received) if 0 <= received < len(logits) else received,
          "Return the index of the largest logit (np.argmax), as an int.")


@pytest.mark.points(4)
def test_lab_prompts(student, lab):
    """Picks the most likely token after the lab prompts."""
    for prompt in (THIRSTY, HUNGRY):
        nxt = lab(prompt)
        _check_greedy(student, nxt.logits, f"greedy_next_token(logits) after {prompt!r}; top tokens {nxt.top(3)}",
                      nxt.decode)


@pytest.mark.points(3)
@pytest.mark.hidden
def test_peaked_and_flat(student, lab):
    """Peaked and flat real distributions."""
    for prompt in OTHER_PROMPTS:
        nxt = lab(prompt)
        _check_greedy(student, nxt.logits, f"greedy_next_token(logits) after {prompt!r}; top tokens {nxt.top(3)}",
                      nxt.decode)
    # Flattened by a large temperature: the largest logit stays the same.
    nxt = lab(HUNGRY)
    _check_greedy(student, nxt.logits / np.float32(50.0), "greedy_next_token(logits / 50) after the hungry prompt",
                  nxt.decode)


@pytest.mark.points(3)
@pytest.mark.hidden
def test_ties_lowest_id(student):
    """On ties the lowest id wins."""
    logits = np.array([0.5, 2.0, -1.0, 2.0, 2.0], dtype=np.float32)
    _check_greedy(student, logits, "greedy_next_token([0.5, 2.0, -1.0, 2.0, 2.0])")

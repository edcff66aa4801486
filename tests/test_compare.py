"""`lm_support.compare` on the real model: the hungry and thirsty prompts."""

import numpy as np
import plotly.graph_objects as go
import pytest

from conftest import HUNGRY, THIRSTY
from lm_support.compare import as_probabilities, compare_next_tokens, largest_changes


@pytest.fixture(scope="module")
def logits(model):
    return {prompt: model.next_token_logits(model.tokenizer.encode(prompt, add_bos=True))
            for prompt in (HUNGRY, THIRSTY)}


def test_water_gains_most_after_thirsty(model, logits):
    changes = largest_changes(model.tokenizer, logits[HUNGRY], logits[THIRSTY], count=10)
    gains = [change for change in changes if change.change > 0]
    assert gains[0].label == "' water'"
    # Float32 references: ' water' 0.2038 after the thirsty prompt.
    assert gains[0].second_probability == pytest.approx(0.2038, abs=1e-3)
    assert gains[0].change == pytest.approx(gains[0].second_probability - gains[0].first_probability)


def test_food_gains_after_hungry(model, logits):
    changes = largest_changes(model.tokenizer, logits[HUNGRY], logits[THIRSTY], count=10)
    food = [change for change in changes if change.label == "' food'"]
    assert len(food) == 1
    assert food[0].change < 0
    assert food[0].first_probability == pytest.approx(0.0617, abs=1e-3)


def test_changes_sorted_by_size(model, logits):
    changes = largest_changes(model.tokenizer, logits[HUNGRY], logits[THIRSTY], count=10)
    sizes = [abs(change.change) for change in changes]
    assert sizes == sorted(sizes, reverse=True)
    assert len(changes) == 10


def test_probabilities_and_logits_agree(model, logits):
    from_logits = largest_changes(model.tokenizer, logits[HUNGRY], logits[THIRSTY], count=5)
    from_probs = largest_changes(model.tokenizer, as_probabilities(logits[HUNGRY]),
                                 as_probabilities(logits[THIRSTY]), count=5)
    assert [change.token_id for change in from_logits] == [change.token_id for change in from_probs]


def test_figure_has_three_bar_panels(model, logits):
    figure = compare_next_tokens(model.tokenizer, (HUNGRY, logits[HUNGRY]), (THIRSTY, logits[THIRSTY]),
                                 keep_top=8, changes=6)
    assert isinstance(figure, go.Figure)
    bars = [trace for trace in figure.data if trace.type == "bar"]
    assert [len(bar.x) for bar in bars] == [8, 8, 6]
    assert bars[0].x[:4] == ("' a'", "' the'", "' him'", "' food'")
    assert bars[1].x[0] == "' water'"
    assert np.all(np.diff(np.asarray(bars[1].y)) <= 0)
    assert bars[2].x[0] == "' water'"
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert any(HUNGRY in title for title in titles)
    assert any(THIRSTY in title for title in titles)


def test_rejects_two_dimensional_input():
    with pytest.raises(ValueError, match="1-D"):
        as_probabilities(np.zeros((2, 3)))


def test_rejects_non_finite_logits():
    with pytest.raises(ValueError, match="NaN or infinity"):
        as_probabilities(np.array([0.0, np.nan]))

"""plot_next_token: a plotly bar chart of the most probable next tokens."""

import numpy as np
import pytest

from autograder import reference_ops
from autograder.checks import HUNGRY, THIRSTY
from autograder.channel import FigureJSON
from autograder.feedback import CheckFailed, check
from autograder.figures import FigureError, read_bar_chart

pytestmark = pytest.mark.exercise("plot_next_token")

HELPERS = ("softmax", "top_k")


def _chart(student, model, values, prompt, keep_top, what):
    figure = student.call("plot_next_token", values, model.tokenizer, prompt, keep_top, use_reference=HELPERS)
    if not isinstance(figure, FigureJSON):
        raise CheckFailed(what, "a plotly.graph_objects.Figure", figure,
                          "Build the chart with plotly (go.Figure(go.Bar(...)) or px.bar) and return it.")
    try:
        chart = read_bar_chart(figure)
    except FigureError as error:
        raise CheckFailed(what, "a figure with one bar trace", str(error)) from None
    check(chart.bar_traces == 1, what, "exactly one bar trace", f"{chart.bar_traces} bar traces",
          "Draw all tokens in one go.Bar (or one px.bar call).")
    check(chart.orientation == "v", what, "vertical bars", "horizontal bars",
          "Put the tokens on the x axis and the probabilities on the y axis.")
    return chart


def _check_bars(chart, probs, keep_top, what):
    expected_ids, expected_heights = reference_ops.top_k(probs, keep_top)
    check(len(chart.labels) == keep_top and chart.heights.size == keep_top, what,
          f"{keep_top} bars", f"{len(chart.labels)} labels and {chart.heights.size} heights",
          "Keep only the keep_top most probable tokens.")
    check(np.allclose(chart.heights, expected_heights, rtol=1e-4, atol=1e-7), what,
          f"heights {np.round(expected_heights[:5], 4).tolist()} ...",
          f"heights {np.round(chart.heights[:5], 4).tolist()} ...",
          "Bar heights are the probabilities of the top tokens, most probable first.")
    return expected_ids


@pytest.mark.points(5)
def test_top_probabilities(student, model, lab):
    """30 bars with the top probabilities, descending."""
    nxt = lab(THIRSTY)
    what = f"plot_next_token(probs, tokenizer, {THIRSTY!r}) (keep_top=30); the model's top tokens {nxt.top()}"
    _check_bars(_chart(student, model, nxt.probs, THIRSTY, 30, what), nxt.probs, 30, what)


@pytest.mark.points(2)
@pytest.mark.hidden
def test_keep_top_values(student, model, lab):
    """keep_top sets the number of bars."""
    nxt = lab(HUNGRY)
    for keep_top in (5, 12):
        what = f"plot_next_token(probs, tokenizer, {HUNGRY!r}, keep_top={keep_top})"
        _check_bars(_chart(student, model, nxt.probs, HUNGRY, keep_top, what), nxt.probs, keep_top, what)


@pytest.mark.points(3)
@pytest.mark.hidden
def test_logits_input(student, model, lab):
    """Raw logits are converted with softmax."""
    nxt = lab(HUNGRY)
    what = f"plot_next_token(logits, tokenizer, {HUNGRY!r}, keep_top=10) with raw logits"
    chart = _chart(student, model, nxt.logits, HUNGRY, 10, what)
    _check_bars(chart, nxt.probs, 10, what)


@pytest.mark.points(2)
def test_labels(student, model, lab):
    """Labels are repr() of the decoded tokens and unique."""
    tokenizer = model.tokenizer
    # "A" and its byte-fallback token <0x41> decode alike, so labels need more.
    letter, byte = tokenizer.encode("A")[0], tokenizer.encode(["<0x41>"])[0]
    probs = np.full(tokenizer.vocab_size, 0.1 / (tokenizer.vocab_size - 3))
    probs[[letter, byte, tokenizer.encode(" the")[0]]] = [0.5, 0.25, 0.15]
    probs /= probs.sum()
    what = "the x labels of plot_next_token(probs, tokenizer, prompt, keep_top=3) where two tokens decode to 'A'"
    chart = _chart(student, model, probs, "A test", 3, what)
    expected_ids = _check_bars(chart, probs, 3, what)
    for token_id, label in zip(expected_ids, chart.labels):
        token_repr = repr(tokenizer.decode([int(token_id)]))
        check(token_repr in label, what, f"a label containing {token_repr}", repr(label),
              "Label each bar with repr(tokenizer.decode([token_id])).")
    check(len(set(chart.labels)) == len(chart.labels), what, "unique labels", chart.labels,
          "plotly merges bars with equal labels: add the token id to a label that repeats.")


@pytest.mark.points(2)
def test_titles(student, model, lab):
    """Title contains the prompt; axes are Tokens and Probability."""
    nxt = lab(HUNGRY)
    what = f"the titles of plot_next_token(probs, tokenizer, {HUNGRY!r})"
    chart = _chart(student, model, nxt.probs, HUNGRY, 30, what)
    check(HUNGRY in chart.title, what, f"a title containing {HUNGRY!r}", repr(chart.title))
    check(chart.xaxis_title == "Tokens", what, "x axis title 'Tokens'", repr(chart.xaxis_title))
    check(chart.yaxis_title == "Probability", what, "y axis title 'Probability'", repr(chart.yaxis_title))

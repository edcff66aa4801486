"""Compare the next-token distributions after two prompts.

`compare_next_tokens` draws both distributions side by side in one plotly
figure, with a third panel for the tokens whose probability changes most.
`largest_changes` returns those tokens as data. The lab uses them to show
how one word of context ("hungry" or "thirsty") moves the model's bets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

# Values within this distance of a total of 1 are read as probabilities.
_PROBABILITY_SUM_TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class TokenChange:
    """One token's next-token probability after each of two prompts."""

    token_id: int
    label: str  # repr of the decoded token, e.g. "' water'"
    first_probability: float
    second_probability: float

    @property
    def change(self) -> float:
        """The second probability minus the first: positive when the second prompt favours the token."""
        return self.second_probability - self.first_probability


def as_probabilities(probs_or_logits) -> np.ndarray:
    """Return float64 probabilities of shape `(V,)`.

    Values that are non-negative and sum to 1 are taken as probabilities,
    anything else as logits, to which a softmax is applied.

    Raises:
      ValueError: the input is not 1-D or contains a non-finite value.
    """
    values = np.asarray(probs_or_logits, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"expected a 1-D array over the vocabulary, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("the logits or probabilities contain NaN or infinity")
    if values.min() >= 0 and abs(values.sum() - 1.0) <= _PROBABILITY_SUM_TOLERANCE:
        return values
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


def token_labels(tokenizer, token_ids: Sequence[int]) -> list[str]:
    """Return `repr` of each decoded token, with the id added where two labels would be equal."""
    labels: list[str] = []
    for token_id in token_ids:
        label = repr(tokenizer.decode([int(token_id)]))
        if label in labels:
            label = f"{label} (id {int(token_id)})"
        labels.append(label)
    return labels


def largest_changes(tokenizer, first, second, count: int = 10) -> list[TokenChange]:
    """Return the `count` tokens whose probability differs most between two distributions.

    Args:
      tokenizer: decodes token ids for the labels.
      first, second: probabilities or logits of shape `(V,)`, read as in `as_probabilities`.
      count: how many tokens to return.

    Returns:
      `TokenChange`s sorted by the size of the change, largest first; ties
      keep the lower token id first.
    """
    first_probs, second_probs = as_probabilities(first), as_probabilities(second)
    if first_probs.shape != second_probs.shape:
        raise ValueError(f"the distributions differ in size: {first_probs.shape} and {second_probs.shape}")
    difference = second_probs - first_probs
    token_ids = np.argsort(-np.abs(difference), kind="stable")[:count]
    labels = token_labels(tokenizer, token_ids)
    return [
        TokenChange(int(token_id), label, float(first_probs[token_id]), float(second_probs[token_id]))
        for token_id, label in zip(token_ids, labels)
    ]


def compare_next_tokens(tokenizer, first: tuple[str, object], second: tuple[str, object],
                        keep_top: int = 10, changes: int = 10):
    """Draw two prompts' next-token distributions side by side, and the largest changes.

    Args:
      tokenizer: decodes token ids for the bar labels.
      first, second: `(prompt, probabilities or logits of shape (V,))` pairs.
      keep_top: how many of each prompt's most probable tokens to draw.
      changes: how many tokens to draw in the panel of changes.

    Returns:
      A `plotly.graph_objects.Figure` with three bar traces in three panels.
      The first two show the `keep_top` most probable tokens after each
      prompt, most probable first. The third shows the `changes` tokens
      whose probability differs most, as second minus first, so a positive
      bar means that the second prompt favours the token.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    (first_prompt, first_values), (second_prompt, second_values) = first, second
    first_probs, second_probs = as_probabilities(first_values), as_probabilities(second_values)
    figure = make_subplots(
        rows=1, cols=3, horizontal_spacing=0.08,
        subplot_titles=(f'After "{first_prompt}"', f'After "{second_prompt}"', "Largest changes (second - first)"),
    )
    for column, probs in ((1, first_probs), (2, second_probs)):
        token_ids = np.argsort(-probs, kind="stable")[:keep_top]
        figure.add_trace(
            go.Bar(x=token_labels(tokenizer, token_ids), y=probs[token_ids], name=f"prompt {column}"),
            row=1, col=column,
        )
        figure.update_yaxes(title_text="Probability", row=1, col=column)

    moved = largest_changes(tokenizer, first_probs, second_probs, changes)
    figure.add_trace(
        go.Bar(
            x=[change.label for change in moved],
            y=[change.change for change in moved],
            marker_color=["seagreen" if change.change > 0 else "indianred" for change in moved],
            name="change",
        ),
        row=1, col=3,
    )
    figure.update_yaxes(title_text="Change in probability", row=1, col=3)
    figure.update_xaxes(title_text="Tokens")
    figure.update_layout(title="Next-token probabilities after two prompts", showlegend=False, height=450)
    return figure

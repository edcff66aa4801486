"""Lab 3: experiment with a transformer model (reference solution).

Seven functions turn a language model's next-token logits into text and
pictures: softmax, top-k selection, greedy decoding, sampling with a
temperature, top-p (nucleus) filtering, a generation loop and a bar chart of
the next-token distribution.

Instructors: each function body is an nbgrader solution block, and
`python -m autograder.release` writes the student release in `exercises/`
with those blocks replaced by `raise NotImplementedError()`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import plotly.graph_objects as go


def softmax(logits):
    """Convert logits into probabilities over the last axis.

    Args:
      logits: array-like of shape `(..., V)`, any float dtype (bfloat16
        included), NumPy or JAX.

    Returns:
      Probabilities of the same shape, as float32 or wider, each row summing
      to 1. The input array is left unchanged.
    """
    ### BEGIN SOLUTION
    values = np.asarray(logits, dtype=np.float64)
    # Subtracting the row maximum keeps exp() finite for large logits.
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
    ### END SOLUTION


def top_k(probs, k):
    """Return the `k` most probable tokens, most probable first.

    Args:
      probs: 1-D array-like of probabilities (or scores) over the vocabulary.
      k: how many tokens to return, between 1 and `len(probs)`.

    Returns:
      `(token_ids, values)`: the ids of the `k` largest entries and their
      values, largest first. Equal values keep the lower token id first.

    Raises:
      ValueError: `k` is outside `1..len(probs)`.
    """
    ### BEGIN SOLUTION
    values = np.asarray(probs)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= values.shape[-1]:
        raise ValueError(f"k must be an int between 1 and {values.shape[-1]}, got {k!r}")
    # A stable sort of the negated values puts lower ids first on ties.
    token_ids = np.argsort(-values, kind="stable")[:k]
    return token_ids, values[token_ids]
    ### END SOLUTION


def greedy_next_token(logits):
    """Return the id (an `int`) of the token with the largest logit.

    On ties the lowest token id wins.
    """
    ### BEGIN SOLUTION
    return int(np.argmax(np.asarray(logits)))
    ### END SOLUTION


def sample_next_token(logits, rng, temperature=1.0):
    """Draw one token id from `softmax(logits / temperature)`.

    Args:
      logits: 1-D array-like of next-token logits.
      rng: a JAX PRNG key, from `jax.random.key` or `jax.random.PRNGKey`.
      temperature: above 1 flattens the distribution, below 1 sharpens it.

    Returns:
      The sampled token id, an `int`. The same key gives the same token.

    Raises:
      ValueError: `temperature` is not positive.
    """
    ### BEGIN SOLUTION
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    scaled = jnp.asarray(logits, dtype=jnp.float32) / temperature
    return int(jax.random.categorical(rng, scaled))
    ### END SOLUTION


def top_p_filter(probs, top_p):
    """Keep the smallest set of most probable tokens whose total reaches `top_p`.

    The token whose probability makes the running total cross `top_p` is
    kept, and so at least one token always is. The other entries are set to
    0 and the result is renormalised to sum to 1.

    Raises:
      ValueError: `top_p` is outside `(0, 1]`.
    """
    ### BEGIN SOLUTION
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    values = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    cumulative = np.cumsum(values[order])
    # The first position where the running total reaches top_p; rounding can
    # leave the total just under 1, hence the clamp to the last index.
    last = min(int(np.searchsorted(cumulative, top_p * cumulative[-1])), values.size - 1)
    filtered = np.zeros_like(values)
    kept = order[: last + 1]
    filtered[kept] = values[kept]
    return filtered / filtered.sum()
    ### END SOLUTION


def generate(model, prompt, max_new_tokens=10, do_sample=True, rng=None, temperature=1.0):
    """Continue `prompt` one token at a time and return only the new text.

    Args:
      model: an `lm_support.LanguageModel`.
      prompt: the text to continue. It is encoded with BOS.
      max_new_tokens: the maximum number of tokens to append.
      do_sample: sample with `sample_next_token` when true, otherwise use
        `greedy_next_token`.
      rng: a JAX PRNG key; `None` means `jax.random.key(0)`. A fresh key is
        split off it at every step.
      temperature: passed to `sample_next_token`.

    Returns:
      The decoded new tokens. Generation stops after EOS, which is not part
      of the result.
    """
    ### BEGIN SOLUTION
    tokenizer = model.tokenizer
    eos = int(tokenizer.special_tokens.EOS)
    if rng is None:
        rng = jax.random.key(0)

    token_ids = tokenizer.encode(prompt, add_bos=True)
    new_ids = []
    for _ in range(max_new_tokens):
        logits = model.next_token_logits(token_ids)
        if do_sample:
            rng, step_key = jax.random.split(rng)
            token_id = sample_next_token(logits, step_key, temperature)
        else:
            token_id = greedy_next_token(logits)
        if token_id == eos:
            break
        new_ids.append(token_id)
        token_ids.append(token_id)
    return tokenizer.decode(new_ids)
    ### END SOLUTION


def plot_next_token(probs_or_logits, tokenizer, prompt, keep_top=30):
    """Draw the `keep_top` most probable next tokens as a bar chart.

    Args:
      probs_or_logits: shape `(V,)`. Treated as probabilities when they are
        non-negative and sum to 1, otherwise as logits (softmax applied).
      tokenizer: decodes token ids for the bar labels.
      prompt: the text the distribution follows, shown in the title.
      keep_top: how many bars to draw.

    Returns:
      A `plotly.graph_objects.Figure` with one bar per token, most probable
      first, labelled with `repr` of the decoded token.
    """
    ### BEGIN SOLUTION
    values = np.asarray(probs_or_logits, dtype=np.float64)
    is_distribution = values.min() >= 0 and np.isclose(values.sum(), 1.0, atol=1e-4)
    probs = values if is_distribution else softmax(values)

    token_ids, top_probs = top_k(probs, keep_top)
    labels = []
    for token_id in token_ids:
        label = repr(tokenizer.decode([int(token_id)]))
        # Distinct ids can decode to the same text; keep bar labels unique.
        if label in labels:
            label = f"{label} (id {int(token_id)})"
        labels.append(label)

    figure = go.Figure(go.Bar(x=labels, y=top_probs))
    figure.update_layout(
        title=f'Next-token probabilities after the prompt "{prompt}"',
        xaxis_title="Tokens",
        yaxis_title="Probability",
    )
    return figure
    ### END SOLUTION

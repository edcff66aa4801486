"""Lab 3: experiment with a transformer model (student version).

Seven functions turn a language model's next-token logits into text and
pictures: softmax, top-k selection, greedy decoding, sampling with a
temperature, top-p (nucleus) filtering, a generation loop and a bar chart of
the next-token distribution.
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
    # YOUR CODE HERE
    raise NotImplementedError()


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
    # YOUR CODE HERE
    raise NotImplementedError()


def greedy_next_token(logits):
    """Return the id (an `int`) of the token with the largest logit.

    On ties the lowest token id wins.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


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
    # YOUR CODE HERE
    raise NotImplementedError()


def top_p_filter(probs, top_p):
    """Keep the smallest set of most probable tokens whose total reaches `top_p`.

    The token whose probability makes the running total cross `top_p` is
    kept, and so at least one token always is. The other entries are set to
    0 and the result is renormalised to sum to 1.

    Raises:
      ValueError: `top_p` is outside `(0, 1]`.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


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
    # YOUR CODE HERE
    raise NotImplementedError()


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
    # YOUR CODE HERE
    raise NotImplementedError()

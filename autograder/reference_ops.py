"""The grader's own implementations of the Lab 3 building blocks.

The suites compute expected values with them (in float64), and tests of
`generate` and `plot_next_token` substitute them for the student's helpers,
so that a mistake in `softmax` or `top_k` costs only those functions' points.
"""

from __future__ import annotations

import numpy as np


def softmax(logits) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    values = np.asarray(logits, dtype=np.float64)
    exponentials = np.exp(values - values.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def top_k(probs, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the `k` largest entries, largest first, lower id first on ties."""
    values = np.asarray(probs)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= values.shape[-1]:
        raise ValueError(f"k must be an int between 1 and {values.shape[-1]}, got {k!r}")
    token_ids = np.lexsort((np.arange(values.size), -values.astype(np.float64)))[:k]
    return token_ids, values[token_ids]


def greedy_next_token(logits) -> int:
    return int(np.argmax(np.asarray(logits, dtype=np.float64)))


def sample_next_token(logits, rng, temperature: float = 1.0) -> int:
    """Draw from softmax(logits / temperature) with `jax.random.categorical`."""
    import jax
    import jax.numpy as jnp

    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    return int(jax.random.categorical(rng, jnp.asarray(logits, dtype=jnp.float32) / temperature))


def top_p_filter(probs, top_p: float) -> np.ndarray:
    """Keep the most probable tokens up to and including the one crossing `top_p`."""
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    values = np.asarray(probs, dtype=np.float64)
    order = np.lexsort((np.arange(values.size), -values))
    running_total = np.cumsum(values[order]) / values.sum()
    kept_count = min(int(np.count_nonzero(running_total < top_p)) + 1, values.size)
    filtered = np.zeros_like(values)
    filtered[order[:kept_count]] = values[order[:kept_count]]
    return filtered / filtered.sum()

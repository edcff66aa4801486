"""`LanguageModel`: next-token logits from a `gemma` transformer on CPU.

Generation requests the logits of a context, then of the same context plus
one token, and so on. `LanguageModel` keeps the attention keys and values of
the last context it saw (a KV cache), so each such step runs the transformer
on the new token only, not on the whole context again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence

import numpy as np

from lm_support import matmul_layout
from lm_support._backend import jax, jnp
from lm_support.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

# Every new input shape makes XLA compile the forward pass again (seconds on
# CPU, unless the persistent compilation cache has it), so a context is
# right-padded to the next of these lengths. Up to 128 they double. Above
# 128, each doubling has four steps, because padding to the next power of
# two can nearly double the tokens computed. A 200-token prefill of Gemma 3
# 270M took 465 ms padded to 256 and 332 ms padded to 224 (2-core x86_64).
PADDED_LENGTHS = (16, 32, 64, 128) + tuple(
    octave * step // 4 for octave in (128, 256, 512, 1024, 2048, 4096) for step in (5, 6, 7, 8)
)

# A context that extends the cached one by at most this many tokens runs one
# decoding step per new token. A longer extension, or any other context, runs
# a prefill of the whole context, which is cheaper than that many steps.
MAX_DECODE_STEPS = 4


def padded_length(length: int) -> int:
    """Return the smallest padded length that fits `length` tokens."""
    for candidate in PADDED_LENGTHS:
        if length <= candidate:
            return candidate
    raise ValueError(
        f"A prompt of {length} tokens is longer than the longest supported "
        f"input ({PADDED_LENGTHS[-1]} tokens); shorten the prompt."
    )


def cache_length_for(length: int) -> int:
    """Return the KV cache length for a prefill of `length` tokens.

    Twice the padded length leaves room to decode as many tokens again before
    the next prefill, and keeps the number of compiled shapes small: one
    prefill and one decoding step per padded length.
    """
    return min(2 * padded_length(length), PADDED_LENGTHS[-1])


def positions_and_mask(ids: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the rotary positions of `ids` and which of them may be attended to.

    The rule is the `gemma` transformer's own for an input without a KV cache
    (`gemma.gm.utils._types.Input`, gemma 3.3.0): PAD tokens are never
    attended to and do not advance the position.
    """
    attendable = ids != pad_id
    positions = np.cumsum(attendable)
    return positions - (positions >= 1), attendable


@dataclasses.dataclass
class _CacheState:
    """The KV cache of the last context, and that context's logits."""

    ids: np.ndarray  # int32, the context whose keys and values are in `cache`
    cache: dict  # gemma's per-layer cache, `cache_length` slots per layer
    cache_length: int
    logits: np.ndarray  # float32 `(vocab_size,)`, the logits of the token after `ids`


class LanguageModel:
    """A causal language model that returns the logits of the next token.

    Attributes:
      name: the model name passed to `lm_support.load_model`, e.g. `Gemma-270M`.
      transformer: the `gemma.gm.nn` module.
      tokenizer: the matching tokenizer, with plain-int ids.
    """

    def __init__(self, name: str, transformer, params: dict, tokenizer: Tokenizer):
        """Wrap `transformer` and its `gemma` parameter tree `params`.

        The model keeps the parameters in the layout of
        `lm_support.matmul_layout`, not `params` itself, so that a caller that
        drops `params` keeps them in memory only once.
        """
        self.name = name
        self.transformer = transformer
        self.tokenizer = tokenizer
        self._weights = matmul_layout.to_compute_layout(params, transformer.config)
        self._gemma_params: dict | None = None

        self._forward = jax.jit(self._last_position_logits)
        self._prefill = jax.jit(self._prefill_logits, static_argnames="cache_length")
        self._decode = jax.jit(self._cached_forward)
        self._state: _CacheState | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LanguageModel(name={self.name!r}, vocab_size={self.vocab_size})"

    @property
    def params(self) -> dict:
        """`gemma`'s parameter tree for `transformer`: float32 JAX arrays, or bfloat16
        for an official checkpoint that does not fit in memory in float32.

        Built on first use from the model's own layout; the projection
        weights then take memory twice (about 260 MB for Gemma 3 270M).
        """
        with self._lock:
            if self._gemma_params is None:
                self._gemma_params = matmul_layout.to_gemma_layout(self._weights, self.transformer.config)
            return self._gemma_params

    @property
    def vocab_size(self) -> int:
        return int(self._weights["embedder"]["input_embedding"].shape[0])

    @property
    def _pad_id(self) -> int:
        return int(self.tokenizer.special_tokens.PAD)

    def _last_position_logits(self, weights: dict, tokens: jax.Array) -> jax.Array:
        # Attention is causal and the `gemma` transformer masks PAD (id 0)
        # tokens, so right padding leaves the logits at the last real token
        # unchanged. `return_last_only` finds that position from the mask.
        with matmul_layout.on_compute_layout():
            output = self.transformer.apply({"params": weights}, tokens=tokens, return_last_only=True)
        return output.logits.astype(jnp.float32)

    def _prefill_logits(self, weights, tokens, positions, attention_mask, length, *, cache_length):
        # Keys and values take the parameters' dtype: bfloat16 for an official
        # checkpoint loaded in bfloat16, float32 otherwise.
        cache = self.transformer.config.init_cache(
            batch_size=1, dtype=weights["embedder"]["input_embedding"].dtype, cache_length=cache_length
        )
        logits, cache = self._cached_forward(weights, cache, tokens, positions, attention_mask)
        # The prefill wrote keys and values for every padded slot. The next
        # token goes right after the real ones and overwrites the first PAD.
        end_index = jnp.full((1,), length, dtype=jnp.int32)
        return logits, {name: {**layer, "end_index": end_index} for name, layer in cache.items()}

    def _cached_forward(self, weights, cache, tokens, positions, attention_mask):
        """Run `tokens` on `cache` and return the last position's logits and the updated cache."""
        with matmul_layout.on_compute_layout():
            output = self.transformer.apply(
                {"params": weights},
                tokens=tokens,
                positions=positions,
                attention_mask=attention_mask,
                cache=cache,
                return_last_only=True,
            )
        return output.logits[0].astype(jnp.float32), output.cache

    def _validated_ids(self, token_ids: Sequence[int]) -> np.ndarray:
        ids = np.asarray(token_ids)
        if ids.ndim != 1 or ids.size == 0:
            raise ValueError(
                f"token_ids must be a non-empty 1-D sequence of token ids, got shape {ids.shape}."
            )
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"token_ids must be integers, got dtype {ids.dtype}.")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(
                f"token_ids must lie in [0, {self.vocab_size}), got values from {ids.min()} to {ids.max()}."
            )
        return ids.astype(np.int32)

    def next_token_logits(self, token_ids: Sequence[int]) -> np.ndarray:
        """Return the logits of the token after `token_ids`.

        Args:
          token_ids: the context, a sequence of ints that starts with BOS.

        Returns:
          A float32 array of shape `(vocab_size,)`, which the caller owns.
        """
        ids = self._validated_ids(token_ids)
        padded_length(ids.size)  # raises for a context that is too long
        with self._lock:
            if np.any(ids == self._pad_id):
                # A PAD token inside the context is masked and does not advance
                # the position. Cached slots would then no longer match the
                # positions, so such a context takes the uncached forward pass.
                logits = self._uncached_logits(ids)
            else:
                logits = self._cached_logits(ids)
        # np.array copies: the caller gets a writable array of its own.
        return np.array(logits, dtype=np.float32)

    def clear_cache(self) -> None:
        """Forget the KV cache, so that the next call runs a forward pass over its whole context."""
        with self._lock:
            self._state = None

    def next_token_probabilities(self, token_ids: Sequence[int]) -> np.ndarray:
        """Return the softmax of `next_token_logits`, computed in float64."""
        logits = self.next_token_logits(token_ids).astype(np.float64)
        shifted = np.exp(logits - logits.max())
        return shifted / shifted.sum()

    def _uncached_logits(self, ids: np.ndarray) -> np.ndarray:
        tokens = np.full((1, padded_length(ids.size)), self._pad_id, dtype=np.int32)
        tokens[0, :ids.size] = ids
        return np.asarray(self._forward(self._weights, jnp.asarray(tokens))[0])

    def _cached_logits(self, ids: np.ndarray) -> np.ndarray:
        state = self._state
        if state is not None and state.ids.size == ids.size and np.array_equal(state.ids, ids):
            return state.logits

        new_tokens = ids.size - (state.ids.size if state is not None else 0)
        extends_cache = (
            state is not None
            and 1 <= new_tokens <= MAX_DECODE_STEPS
            and ids.size <= state.cache_length
            and np.array_equal(ids[:state.ids.size], state.ids)
        )
        if extends_cache:
            for end in range(state.ids.size + 1, ids.size + 1):
                state = self._decode_step(state, ids[:end])
        else:
            state = self._prefill_state(ids)
        self._state = state
        return state.logits

    def _prefill_state(self, ids: np.ndarray) -> _CacheState:
        length = padded_length(ids.size)
        cache_length = cache_length_for(ids.size)
        tokens = np.full((1, length), self._pad_id, dtype=np.int32)
        tokens[0, :ids.size] = ids
        positions, attendable = positions_and_mask(tokens[0], self._pad_id)

        # Query i attends to key j when j <= i and slot j contains a real token.
        keys = np.zeros(cache_length, dtype=bool)
        keys[:length] = attendable
        causal = np.arange(cache_length)[None, :] <= np.arange(length)[:, None]
        attention_mask = (causal & keys[None, :])[None]

        logits, cache = self._prefill(
            self._weights,
            jnp.asarray(tokens),
            jnp.asarray(positions[None].astype(np.int32)),
            jnp.asarray(attention_mask),
            jnp.int32(ids.size),
            cache_length=cache_length,
        )
        return _CacheState(ids.copy(), cache, cache_length, np.asarray(logits))

    def _decode_step(self, state: _CacheState, ids: np.ndarray) -> _CacheState:
        """Run the last token of `ids` on a cache that contains all the others."""
        positions, attendable = positions_and_mask(ids, self._pad_id)
        keys = np.zeros(state.cache_length, dtype=bool)
        keys[:ids.size] = attendable

        logits, cache = self._decode(
            self._weights,
            state.cache,
            jnp.asarray(ids[None, -1:]),
            jnp.asarray(positions[None, -1:].astype(np.int32)),
            jnp.asarray(keys[None, None, :]),
        )
        return _CacheState(ids.copy(), cache, state.cache_length, np.asarray(logits))

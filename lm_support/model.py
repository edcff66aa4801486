"""`LanguageModel`: next-token logits from a `gemma` transformer on CPU."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from lm_support._backend import jax, jnp

from lm_support.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

# Every new input length makes XLA compile the forward pass again (several
# seconds on CPU), so prompts are right-padded to the next of these lengths.
PADDED_LENGTHS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


def padded_length(length: int) -> int:
    """Return the smallest padded length that fits `length` tokens."""
    for candidate in PADDED_LENGTHS:
        if length <= candidate:
            return candidate
    raise ValueError(
        f"A prompt of {length} tokens is longer than the longest supported "
        f"input ({PADDED_LENGTHS[-1]} tokens); shorten the prompt."
    )


@dataclasses.dataclass(eq=False)
class LanguageModel:
    """A causal language model that returns the logits of the next token.

    Attributes:
      name: the model name passed to `lm_support.load_model`, e.g. `Gemma-270M`.
      transformer: the `gemma.gm.nn` module.
      params: its parameter tree, as float32 JAX arrays (bfloat16 for an
        official checkpoint that does not fit in memory in float32).
      tokenizer: the matching tokenizer, with plain-int ids.
    """

    name: str
    transformer: object
    params: dict
    tokenizer: Tokenizer

    def __post_init__(self):
        self._forward = jax.jit(self._last_position_logits)

    @property
    def vocab_size(self) -> int:
        return int(self.params["embedder"]["input_embedding"].shape[0])

    def _last_position_logits(self, params: dict, tokens: jax.Array) -> jax.Array:
        # Attention is causal and the `gemma` transformer masks PAD (id 0)
        # tokens, so right padding leaves the logits at the last real token
        # unchanged. `return_last_only` finds that position from the mask.
        output = self.transformer.apply({"params": params}, tokens=tokens, return_last_only=True)
        return output.logits.astype(jnp.float32)

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
          A float32 array of shape `(vocab_size,)`.
        """
        ids = self._validated_ids(token_ids)
        length = padded_length(ids.size)
        tokens = np.full((1, length), self.tokenizer.special_tokens.PAD, dtype=np.int32)
        tokens[0, :ids.size] = ids
        logits = self._forward(self.params, jnp.asarray(tokens))
        # np.array copies: the caller gets a writable array of its own.
        return np.array(logits[0], dtype=np.float32)

    def next_token_probabilities(self, token_ids: Sequence[int]) -> np.ndarray:
        """Return the softmax of `next_token_logits`, computed in float64."""
        logits = self.next_token_logits(token_ids).astype(np.float64)
        shifted = np.exp(logits - logits.max())
        return shifted / shifted.sum()

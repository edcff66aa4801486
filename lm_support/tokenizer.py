"""The Gemma 3 tokenizer, handing out plain Python ints."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from lm_support._backend import gm


@dataclasses.dataclass(frozen=True)
class Tokenizer(gm.text.Gemma3Tokenizer):
    """`gm.text.Gemma3Tokenizer` whose ids are plain `int`s.

    The parent's `encode(..., add_bos=True)` inserts an `IntEnum` BOS, and
    `sentencepiece` 0.2 rejects such a list in `decode`. Students compare and
    serialise ids, so every id that leaves this class is a built-in `int`.
    """

    def encode(self, text: str | list[str], *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = super().encode(text, add_bos=add_bos, add_eos=add_eos)
        return [int(token_id) for token_id in ids]

    def decode(self, ids: int | Iterable[int] | np.ndarray) -> str:
        """Decode a token id, a sequence of ids or a 0-D or 1-D array."""
        array = np.asarray(ids)
        if array.ndim > 1:
            raise ValueError(f"Token ids must be 0- or 1-dimensional, got shape {array.shape}.")
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"Token ids must be integers, got dtype {array.dtype}.")
        return super().decode([int(token_id) for token_id in array.reshape(-1)])


def load_tokenizer(path: str | bytes) -> Tokenizer:
    """Create the tokenizer from a SentencePiece model file."""
    return Tokenizer(path=str(path))

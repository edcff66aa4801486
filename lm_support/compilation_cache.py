"""JAX's persistent compilation cache, so a new process skips XLA compilation.

Compiling one forward pass of Gemma 3 270M took 2 to 6 s on 2 CPU cores
here, and a grading process needs four of them: a prefill and a decoding
step for each of two KV cache lengths. With the cache, a later process reads
the compiled programs from disk instead.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lm_support._backend import jax

from lm_support import weights_cache

logger = logging.getLogger(__name__)

# Set to a folder to use it instead of the default, or to "off" to compile in
# every process.
CACHE_ENV_VAR = "LM_SUPPORT_COMPILATION_CACHE"

# Programs that compile faster than this are not worth a disk read. The
# model's forward passes take seconds, small array operations milliseconds.
_MIN_COMPILE_SECONDS = 0.3


def cache_dir() -> Path | None:
    """Return the folder of compiled programs, or None when the cache is off.

    `$LM_SUPPORT_COMPILATION_CACHE` when set, else `xla` inside the weights
    cache folder (`lm_support.weights_cache.cache_root`).
    """
    configured = os.environ.get(CACHE_ENV_VAR, "").strip()
    if configured.lower() == "off":
        return None
    if configured:
        return Path(configured).expanduser()
    return weights_cache.cache_root() / "xla"


def enable() -> Path | None:
    """Point JAX's persistent compilation cache at `cache_dir()`; return the folder used.

    A folder that the user set through JAX's own `JAX_COMPILATION_CACHE_DIR`
    wins. A folder that cannot be created leaves the cache off, with a
    warning, because compiling is slower but still correct.
    """
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    folder = cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        logger.warning("The compilation cache stays off, because %s cannot be created: %s", folder, error)
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", _MIN_COMPILE_SECONDS)
    logger.debug("Compiled programs are cached in %s", folder)
    return folder

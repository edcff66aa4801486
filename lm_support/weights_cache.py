"""On-disk cache of converted parameters.

One cache entry is a folder with one `.npy` file per parameter, the rebuilt
`tokenizer.model` and a `meta.json`. An entry is built in a temporary folder
and renamed into place, so a reader never sees a half-written entry, and a
file lock makes concurrent graders wait for one conversion instead of each
running their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

CACHE_ENV_VAR = "LM_SUPPORT_CACHE"
TOKENIZER_FILE = "tokenizer.model"
_META_FILE = "meta.json"


def cache_root() -> Path:
    """Return the cache folder: `$LM_SUPPORT_CACHE`, else `~/.cache/lm_support`."""
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "lm_support"


def _flatten(tree: dict, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def _unflatten(items: Iterator[tuple[str, np.ndarray]]) -> dict:
    tree: dict = {}
    for name, value in items:
        *parents, leaf = name.split(".")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return tree


@contextlib.contextmanager
def entry_lock(key: str) -> Iterator[None]:
    """Hold an exclusive lock on one cache key, across processes."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{key}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def entry_path(key: str) -> Path:
    return cache_root() / key


def is_complete(key: str) -> bool:
    return (entry_path(key) / _META_FILE).is_file()


def write_entry(key: str, params: dict, tokenizer_proto: bytes, meta: dict) -> Path:
    """Write a cache entry atomically and return its folder."""
    final = entry_path(key)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
    try:
        for name, value in _flatten(params):
            np.save(staging / f"{name}.npy", np.ascontiguousarray(value, dtype=np.float32))
        (staging / TOKENIZER_FILE).write_bytes(tokenizer_proto)
        # meta.json is written last: its presence marks a complete entry.
        (staging / _META_FILE).write_text(json.dumps(meta, indent=2))
        if final.exists():
            shutil.rmtree(final)  # an incomplete entry from a killed writer
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("Cached converted weights in %s", final)
    return final


def read_entry(key: str) -> tuple[dict, Path]:
    """Return (params as memory-mapped float32 arrays, tokenizer model path)."""
    folder = entry_path(key)
    names = sorted(path.stem for path in folder.glob("*.npy"))
    params = _unflatten((name, np.load(folder / f"{name}.npy", mmap_mode="r")) for name in names)
    return params, folder / TOKENIZER_FILE

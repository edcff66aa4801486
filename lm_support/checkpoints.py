"""Find and load the official Gemma 3 checkpoints (the `gemma` library's Orbax format).

Nothing here uses the network. The `gemma` library names its checkpoints
and tokenizer by `gs://gemma-data/...` addresses. Those names are only
matched against local folders (a local mirror of the bucket) and never
opened. `kagglehub` is not imported either: only its cache folder is read.

Search order, here for Gemma-1B; the first match wins (`checkpoint_candidates`):

1. `$LM_SUPPORT_CHECKPOINTS`, then `$LM_SUPPORT_CACHE/checkpoints`
   (default `~/.cache/lm_support/checkpoints`). In each of these roots:
   a. `ROOT/gemma3-1b-pt`, the folder name of `gm.ckpts.CheckpointPath`;
   b. `ROOT/gemma3-1b`, the folder in the Kaggle archive;
   c. `ROOT/checkpoints/gemma3-1b-pt`, a local mirror of `gs://gemma-data`.
   In a. and b. the tokenizer is `tokenizer_gemma3.model` or
   `tokenizer.model` in ROOT; in c. it is `ROOT/tokenizers/tokenizer_gemma3.model`.
2. The kagglehub cache, `$KAGGLEHUB_CACHE` (default `~/.cache/kagglehub`):
   `models/google/gemma-3/flax/gemma3-1b/VERSION/gemma3-1b` with
   `tokenizer.model` in the VERSION folder, newest complete version first.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lm_support._backend import gm, jax, jnp

from lm_support import weights_cache
from lm_support.model import LanguageModel
from lm_support.tokenizer import load_tokenizer

logger = logging.getLogger(__name__)

CHECKPOINT_ENV_VAR = "LM_SUPPORT_CHECKPOINTS"
DTYPE_ENV_VAR = "LM_SUPPORT_DTYPE"
# kagglehub's own variable for its cache folder (kagglehub/config.py).
KAGGLEHUB_CACHE_ENV_VAR = "KAGGLEHUB_CACHE"

# The `gemma` library names the file `tokenizer_gemma3.model`
# (`gm.text.Gemma3Tokenizer.path`); the Kaggle archive calls it `tokenizer.model`.
TOKENIZER_NAMES = ("tokenizer_gemma3.model", "tokenizer.model")
_GEMMA_BUCKET = "gs://gemma-data/"
_KAGGLE_MODEL = Path("models", "google", "gemma-3", "flax")

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# Room kept free besides the parameters: XLA's compiled forward pass, its
# activations and the Python process. An estimate, not a measurement.
_MEMORY_HEADROOM_BYTES = 2 * 2**30


class CheckpointMismatchError(ValueError):
    """A checkpoint's parameter tree differs from the requested architecture."""


@dataclasses.dataclass(frozen=True)
class CheckpointSpec:
    """An official pretrained Gemma 3 checkpoint and the transformer it fits.

    Attributes:
      model_name: the name passed to `load_model`, e.g. `Gemma-1B`.
      gemma_path: the `gm.ckpts.CheckpointPath` value, a `gs://` address that
        is only used as a name for local folders.
      kaggle_variation: the Flax variation on Kaggle, as in the handle
        `google/gemma-3/flax/<variation>`; the archive's weights folder has
        the same name.
      build_transformer: returns the `gemma.gm.nn` module for the checkpoint.
    """

    model_name: str
    gemma_path: str
    kaggle_variation: str
    build_transformer: Callable[[], object]

    @property
    def gemma_folder_name(self) -> str:
        return self.gemma_path.rstrip("/").rsplit("/", 1)[-1]


OFFICIAL_CHECKPOINTS = {
    "Gemma-1B": CheckpointSpec(
        "Gemma-1B", str(gm.ckpts.CheckpointPath.GEMMA3_1B_PT), "gemma3-1b", gm.nn.Gemma3_1B
    ),
    # text_only drops the vision encoder (about 0.4 B parameters) that the
    # 4B checkpoint also contains; `load_params(text_only=True)` skips it.
    "Gemma-4B": CheckpointSpec(
        "Gemma-4B",
        str(gm.ckpts.CheckpointPath.GEMMA3_4B_PT),
        "gemma3-4b",
        functools.partial(gm.nn.Gemma3_4B, text_only=True),
    ),
}


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One place searched for a checkpoint: its folder and the accepted tokenizer files."""

    checkpoint: Path
    tokenizers: tuple[Path, ...]
    source: str


@dataclasses.dataclass(frozen=True)
class CheckpointLocation:
    """A checkpoint folder and the tokenizer file found for it."""

    checkpoint: Path
    tokenizer: Path


def _bucket_relative(gs_path: str) -> Path:
    if not gs_path.startswith(_GEMMA_BUCKET):
        raise ValueError(f"Expected a path under {_GEMMA_BUCKET}, got {gs_path!r}.")
    return Path(gs_path[len(_GEMMA_BUCKET):])


def checkpoint_roots() -> list[tuple[Path, str]]:
    """Return the folders searched first, each with the setting that names it."""
    roots = []
    configured = os.environ.get(CHECKPOINT_ENV_VAR)
    if configured:
        roots.append((Path(configured).expanduser(), f"${CHECKPOINT_ENV_VAR}"))
    roots.append((weights_cache.cache_root() / "checkpoints", "the lm_support cache"))
    return roots


def kagglehub_cache() -> Path:
    """Return kagglehub's cache folder: `$KAGGLEHUB_CACHE`, else `~/.cache/kagglehub`."""
    configured = os.environ.get(KAGGLEHUB_CACHE_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "kagglehub"


def _kaggle_versions(variation_folder: Path) -> list[Path]:
    """Return the version folders that kagglehub finished downloading, newest first.

    kagglehub writes the marker file `VERSION.complete` beside a version
    folder after the whole download succeeded (kagglehub/cache.py).
    """
    if not variation_folder.is_dir():
        return []
    versions = [
        path for path in variation_folder.iterdir()
        if path.is_dir() and path.name.isdigit() and (variation_folder / f"{path.name}.complete").is_file()
    ]
    return sorted(versions, key=lambda path: int(path.name), reverse=True)


def checkpoint_candidates(spec: CheckpointSpec) -> list[Candidate]:
    """Return every place searched for `spec`, in search order (see the module docstring)."""
    tokenizer_in_bucket = _bucket_relative(str(gm.text.Gemma3Tokenizer.path))
    candidates = []
    for root, setting in checkpoint_roots():
        tokenizers_beside = tuple(root / name for name in TOKENIZER_NAMES)
        candidates += [
            Candidate(root / spec.gemma_folder_name, tokenizers_beside, setting),
            Candidate(root / spec.kaggle_variation, tokenizers_beside, f"{setting}, Kaggle archive layout"),
            Candidate(
                root / _bucket_relative(spec.gemma_path),
                (root / tokenizer_in_bucket,),
                f"{setting}, mirror of {_GEMMA_BUCKET}",
            ),
        ]

    variation_folder = kagglehub_cache() / _KAGGLE_MODEL / spec.kaggle_variation
    for version in _kaggle_versions(variation_folder):
        candidates.append(
            Candidate(
                version / spec.kaggle_variation,
                tuple(version / name for name in reversed(TOKENIZER_NAMES)),
                f"kagglehub cache, version {version.name}",
            )
        )
    return candidates


def _describe(candidate: Candidate) -> str:
    tokenizers = " or ".join(path.name for path in candidate.tokenizers)
    where = candidate.tokenizers[0].parent
    line = f"  - {candidate.checkpoint} with {tokenizers} in {where} ({candidate.source})"
    if candidate.checkpoint.is_dir():
        line += ": the checkpoint folder exists but the tokenizer is missing"
    return line


def _not_found_message(spec: CheckpointSpec) -> str:
    places = [_describe(candidate) for candidate in checkpoint_candidates(spec)]
    variation_folder = kagglehub_cache() / _KAGGLE_MODEL / spec.kaggle_variation
    if not _kaggle_versions(variation_folder):
        places.append(
            f"  - {variation_folder}/VERSION/{spec.kaggle_variation} with tokenizer.model in "
            "VERSION (kagglehub cache; no completed download there)"
        )
    handle = f"google/gemma-3/flax/{spec.kaggle_variation}"
    first_root = checkpoint_roots()[0][0]
    return (
        f"The official {spec.model_name} checkpoint was not found. Looked in:\n" + "\n".join(places) + "\n"
        f"To get it, accept the Gemma license on https://www.kaggle.com/models/google/gemma-3, then either "
        f"run `kagglehub.model_download('{handle}')`, which fills the kagglehub cache, or download the "
        f"Flax variation '{spec.kaggle_variation}' archive there and extract it into {first_root} "
        f"(or set ${CHECKPOINT_ENV_VAR} to the folder you extracted it into). The archive contains the "
        f"folder '{spec.kaggle_variation}' and 'tokenizer.model'. See docs/models.md. "
        "The embedded 'Gemma-270M' needs no download."
    )


def find_checkpoint(spec: CheckpointSpec) -> CheckpointLocation:
    """Return the first checkpoint folder with a tokenizer for `spec`.

    Raises:
      FileNotFoundError: no candidate has both; the message lists every place
        searched and how to download the files.
    """
    for candidate in checkpoint_candidates(spec):
        if not candidate.checkpoint.is_dir():
            continue
        for tokenizer in candidate.tokenizers:
            if tokenizer.is_file():
                return CheckpointLocation(candidate.checkpoint, tokenizer)
    raise FileNotFoundError(_not_found_message(spec))


def available_models() -> list[str]:
    """Return the names of the models that `load_model` finds on this machine.

    The embedded "Gemma-270M" is always there. An official model is listed
    when `find_checkpoint` finds its checkpoint folder and tokenizer. The
    files are not opened, so a damaged checkpoint is listed and fails at load.
    """
    names = ["Gemma-270M"]
    for name, spec in OFFICIAL_CHECKPOINTS.items():
        try:
            find_checkpoint(spec)
        except FileNotFoundError:
            continue
        names.append(name)
    return names


def _flat_shapes(tree: dict) -> dict[str, tuple[int, ...]]:
    """Map each parameter's path, such as `layer_0/attn/q_einsum/w`, to its shape."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {
        "/".join(str(key.key) for key in path): tuple(int(size) for size in leaf.shape)
        for path, leaf in leaves
    }


def read_checkpoint_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Read the text-model parameter shapes from a checkpoint's metadata, without loading it.

    The official checkpoints store their parameters in the `gemma` library's
    older flat or stacked layouts. `gm.ckpts.load_params` converts them to the
    nested `model.init()` layout with the same helper that is used here.
    """
    from gemma.gm.ckpts import _checkpoint
    from orbax import checkpoint as ocp

    # NOTE: `_get_metadata_and_path` and `_CheckpointTree` are private to
    # `gemma` and checked only against gemma 3.3.0, the pinned version.
    metadata, _ = _checkpoint._get_metadata_and_path(ocp.StandardCheckpointer(), folder)
    tree = _checkpoint._CheckpointTree.shape_dtype_struct_like(tree=metadata)
    return _flat_shapes(tree.as_nested(remove_mm=tree.has_mm_params).tree)


def expected_parameters(transformer) -> dict:
    """Return the transformer's parameter tree as `jax.ShapeDtypeStruct`s, allocating nothing."""
    tokens = jnp.zeros((1, 1), dtype=jnp.int32)
    variables = jax.eval_shape(lambda: transformer.init(jax.random.key(0), tokens=tokens))
    return variables["params"]


def check_parameter_shapes(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], model_name: str, folder: Path
) -> None:
    """Raise `CheckpointMismatchError` at the first parameter that differs.

    Parameters are compared in the transformer's own order; a parameter that
    only the checkpoint has is reported after all expected ones matched.
    """
    problem = None
    for path, shape in expected.items():
        if path not in found:
            problem = f"parameter '{path}' is missing from the checkpoint ({model_name} expects shape {shape})"
        elif found[path] != shape:
            problem = f"parameter '{path}' has shape {found[path]} in the checkpoint, but {model_name} expects {shape}"
        if problem:
            break
    else:
        extra = [path for path in found if path not in expected]
        if extra:
            problem = f"the checkpoint has parameter '{extra[0]}' with shape {found[extra[0]]}, which {model_name} does not have"
    if problem:
        raise CheckpointMismatchError(
            f"The checkpoint in {folder} does not fit {model_name}: {problem}. "
            f"Check that the folder holds the {model_name} pre-trained checkpoint, not another size."
        )


def _available_memory_bytes() -> int | None:
    """Return the memory this process may still use, or None when unknown.

    Reads `MemAvailable` from /proc/meminfo and, inside a cgroup v2 container,
    the cgroup's limit minus its current use, whichever is smaller.
    """
    available = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            current = int(Path("/sys/fs/cgroup/memory.current").read_text())
            available.append(int(limit) - current)
    except (OSError, ValueError):
        pass
    return min(available) if available else None


def choose_dtype(parameter_count: int, model_name: str) -> jnp.dtype:
    """Pick float32 when it fits in memory, else bfloat16; `$LM_SUPPORT_DTYPE` overrides.

    Raises:
      ValueError: `$LM_SUPPORT_DTYPE` is set to something other than `float32`,
        `bfloat16` or `auto`.
    """
    requested = os.environ.get(DTYPE_ENV_VAR, "auto").strip().lower()
    if requested in DTYPES:
        return DTYPES[requested]
    if requested != "auto":
        raise ValueError(
            f"{DTYPE_ENV_VAR}={requested!r} is not valid; use float32, bfloat16 or auto (the default)."
        )

    available = _available_memory_bytes()
    float32_bytes = 4 * parameter_count
    if available is None or float32_bytes + _MEMORY_HEADROOM_BYTES <= available:
        return jnp.float32
    logger.warning(
        "%s needs %.1f GB in float32 but only %.1f GB of memory is available; loading it in "
        "bfloat16 (logits differ slightly from float32). Set %s=float32 to force float32.",
        model_name, float32_bytes / 1e9, available / 1e9, DTYPE_ENV_VAR,
    )
    if 2 * parameter_count + _MEMORY_HEADROOM_BYTES > available:
        logger.warning("%s may not fit in memory even in bfloat16 (%.1f GB).", model_name, 2 * parameter_count / 1e9)
    return jnp.bfloat16


def load_checkpoint(
    checkpoint: Path,
    tokenizer_path: Path,
    transformer,
    model_name: str,
    dtype: jnp.dtype | None = None,
) -> LanguageModel:
    """Load an Orbax checkpoint with `gm.ckpts.load_params` into a `LanguageModel`.

    The shapes in the checkpoint's metadata are checked against `transformer`
    before any array is read, so a checkpoint of another size fails fast.

    Args:
      checkpoint: the checkpoint folder.
      tokenizer_path: the SentencePiece model that belongs to it.
      transformer: the `gemma.gm.nn` module the parameters are for.
      model_name: the name for messages and `LanguageModel.name`.
      dtype: the parameter dtype; None picks one with `choose_dtype`.

    Raises:
      CheckpointMismatchError: the checkpoint's parameters differ from the
        transformer's, or its tokenizer has more tokens than its embedding.
    """
    expected = expected_parameters(transformer)
    expected_shapes = _flat_shapes(expected)
    check_parameter_shapes(expected_shapes, read_checkpoint_shapes(checkpoint), model_name, checkpoint)

    tokenizer = load_tokenizer(tokenizer_path)
    embedding_rows = expected_shapes["embedder/input_embedding"][0]
    if tokenizer.vocab_size > embedding_rows:
        raise CheckpointMismatchError(
            f"The tokenizer {tokenizer_path} has {tokenizer.vocab_size} tokens but {model_name} embeds only "
            f"{embedding_rows}; use the tokenizer that came with the checkpoint."
        )

    parameter_count = sum(int(np.prod(shape)) for shape in expected_shapes.values())
    dtype = dtype or choose_dtype(parameter_count, model_name)
    logger.info(
        "Loading %s from %s (%.2f B parameters, %s)", model_name, checkpoint, parameter_count / 1e9, jnp.dtype(dtype).name
    )
    started = time.monotonic()
    # Orbax restores straight into the target's dtype, so float32 needs no
    # second copy of the stored bfloat16 weights.
    target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, dtype), expected)
    params = gm.ckpts.load_params(checkpoint, params=target, donate=False, text_only=True)
    logger.info("Loaded %s in %.0f s", model_name, time.monotonic() - started)
    return LanguageModel(name=model_name, transformer=transformer, params=params, tokenizer=tokenizer)


def load_official(model_name: str) -> LanguageModel:
    """Find and load the official checkpoint of `model_name` (a key of `OFFICIAL_CHECKPOINTS`)."""
    spec = OFFICIAL_CHECKPOINTS[model_name]
    location = find_checkpoint(spec)
    return load_checkpoint(location.checkpoint, location.tokenizer, spec.build_transformer(), model_name)

"""Model names, the official-checkpoint error and the converted-weights cache."""

import os
import subprocess
import sys

import pytest

from lm_support import load_model
from lm_support.loading import CHECKPOINT_ENV_VAR


def test_unknown_model_name():
    with pytest.raises(ValueError, match="Gemma-270M"):
        load_model("Gemma-2B")


@pytest.mark.parametrize("name, folder", [("Gemma-1B", "gemma3-1b-pt"), ("Gemma-4B", "gemma3-4b-pt")])
def test_missing_checkpoint_names_locations(tmp_path, monkeypatch, name, folder):
    monkeypatch.setenv(CHECKPOINT_ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        load_model(name)
    message = str(error.value)
    assert str(tmp_path / folder) in message
    assert "tokenizer_gemma3.model" in message
    assert CHECKPOINT_ENV_VAR in message


_LOAD = (
    "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s');"
    "import lm_support; m = lm_support.load_model();"
    "ids = m.tokenizer.encode('Jide was thirsty', add_bos=True);"
    "print('TOKENS', ids, 'TOP', int(m.next_token_logits(ids).argmax()))"
)


def _load_in_fresh_process(cache=None, extra_env=None):
    """Load the model in a new process, with `cache` as its weights cache (None: the usual one)."""
    env = dict(os.environ, **(extra_env or {}))
    if cache is not None:
        env["LM_SUPPORT_CACHE"] = str(cache)
    return subprocess.run([sys.executable, "-c", _LOAD], env=env, capture_output=True, text=True, timeout=600)


def test_converted_weights_cached_and_reused(tmp_path):
    first = _load_in_fresh_process(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Converting Gemma 3 270M" in first.stdout
    entries = [
        path for path in tmp_path.iterdir()
        if path.is_dir() and not path.name.startswith(".") and path.name != "xla"
    ]
    assert len(entries) == 1
    assert (entries[0] / "meta.json").is_file()
    assert not list(tmp_path.glob("*.gguf")), "the assembled GGUF should be removed after conversion"
    meta_mtime = (entries[0] / "meta.json").stat().st_mtime_ns

    second = _load_in_fresh_process(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Converting" not in second.stdout
    assert "Loading converted weights" in second.stdout
    assert (entries[0] / "meta.json").stat().st_mtime_ns == meta_mtime
    assert first.stdout.splitlines()[-1] == second.stdout.splitlines()[-1]


def test_prepare_fills_compilation_cache(tmp_path):
    compiled = tmp_path / "compiled"
    env = dict(os.environ, LM_SUPPORT_COMPILATION_CACHE=str(compiled))
    prepared = subprocess.run([sys.executable, "-m", "lm_support.prepare"], env=env,
                              capture_output=True, text=True, timeout=900)
    assert prepared.returncode == 0, prepared.stderr
    programs = sorted(path.name for path in compiled.iterdir())
    # A prefill and a decoding step for the KV cache lengths 32 and 128.
    assert sum(name.startswith("jit__prefill_logits") for name in programs) == 2, programs
    assert sum(name.startswith("jit__cached_forward") for name in programs) == 2, programs

    # A new process finds every program it needs on disk and adds none.
    loaded = _load_in_fresh_process(extra_env={"LM_SUPPORT_COMPILATION_CACHE": str(compiled)})
    assert loaded.returncode == 0, loaded.stderr
    assert sorted(path.name for path in compiled.iterdir()) == programs


def test_compilation_cache_folder_setting(tmp_path, monkeypatch):
    from lm_support import compilation_cache

    monkeypatch.setenv("LM_SUPPORT_COMPILATION_CACHE", "off")
    assert compilation_cache.cache_dir() is None
    monkeypatch.setenv("LM_SUPPORT_COMPILATION_CACHE", str(tmp_path / "compiled"))
    assert compilation_cache.cache_dir() == tmp_path / "compiled"
    monkeypatch.delenv("LM_SUPPORT_COMPILATION_CACHE")
    monkeypatch.setenv("LM_SUPPORT_CACHE", str(tmp_path))
    assert compilation_cache.cache_dir() == tmp_path / "xla"

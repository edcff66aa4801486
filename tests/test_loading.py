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
    "print('TOKENS', m.tokenizer.encode('Jide was thirsty', add_bos=True))"
)


def _load_in_fresh_process(cache):
    env = dict(os.environ, LM_SUPPORT_CACHE=str(cache))
    return subprocess.run([sys.executable, "-c", _LOAD], env=env, capture_output=True, text=True, timeout=600)


def test_converted_weights_cached_and_reused(tmp_path):
    first = _load_in_fresh_process(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Converting Gemma 3 270M" in first.stdout
    entries = [path for path in tmp_path.iterdir() if path.is_dir() and not path.name.startswith(".")]
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

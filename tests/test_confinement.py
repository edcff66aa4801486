"""Choosing the isolation level of the child that runs student code."""

import subprocess
import sys

import pytest

from autograder import confinement


def test_environment_variable_sets_mode(monkeypatch):
    monkeypatch.setenv(confinement.MODE_ENV_VAR, "none")

    chosen = confinement.choose()

    assert chosen.level == "none"
    assert chosen.prefix == ()


def test_argument_overrides_environment(monkeypatch):
    monkeypatch.setenv(confinement.MODE_ENV_VAR, "bogus")

    assert confinement.choose("none").level == "none"


def test_invalid_mode_names_variable(monkeypatch):
    monkeypatch.setenv(confinement.MODE_ENV_VAR, "bogus")

    with pytest.raises(ValueError, match=confinement.MODE_ENV_VAR):
        confinement.choose()


def test_batch_rejects_unknown_isolation(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "batch", str(tmp_path), "--output", str(tmp_path / "g.csv"),
         "--isolation", "bogus"],
        capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 2
    assert "--isolation" in result.stderr

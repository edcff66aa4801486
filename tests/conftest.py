"""Shared fixtures: the real embedded Gemma 3 270M, loaded once per test run."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTION = REPO_ROOT / "solutions" / "lab3_transformer.py"
STUB = REPO_ROOT / "exercises" / "lab3_transformer.py"

THIRSTY = "Jide was thirsty so she went looking for"
HUNGRY = "Jide was hungry so she went looking for"


@pytest.fixture(scope="session")
def model():
    from lm_support import load_model

    return load_model()

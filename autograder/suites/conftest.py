"""Fixtures of the grading suites.

`student` (the submission) and `model` (the real `LanguageModel`) come from
`autograder.plugin.GradingPlugin`; `lab` gives real next-token distributions.
"""

import pytest

from autograder.checks import Lab


@pytest.fixture(scope="session")
def lab(model) -> Lab:
    return Lab(model)

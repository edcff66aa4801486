"""Every realistic mistake loses points in its own exercise only; every correct variant scores 100.

Submissions are graded in this process with `autograder.grading.grade`
(the real model is loaded once), each in its own sandboxed child.
"""

import collections

import pytest

from autograder.grading import grade
from catalogue import CORRECT, WRONG, build_source
from conftest import SOLUTION

pytestmark = pytest.mark.slow


def _points_by_exercise(report):
    earned, possible = collections.Counter(), collections.Counter()
    for test in report.tests:
        earned[test.exercise] += test.score
        possible[test.exercise] += test.max_score
    return earned, possible


def _grade_variant(tmp_path, variant):
    path = tmp_path / "lab3_transformer.py"
    path.write_text(build_source(SOLUTION.read_text(), variant))
    return grade(path)


def _failures(report):
    return {test.name: test.output for test in report.tests if test.score < test.max_score}


def test_catalogue_sizes():
    assert len(WRONG) >= 25
    assert len(CORRECT) >= 10
    assert len({variant.name for variant in WRONG + CORRECT}) == len(WRONG) + len(CORRECT)


@pytest.mark.parametrize("variant", WRONG, ids=lambda variant: variant.name)
def test_wrong_variant_loses_points_in_its_exercise(tmp_path, variant):
    report = _grade_variant(tmp_path, variant)
    earned, possible = _points_by_exercise(report)
    assert earned[variant.exercise] < possible[variant.exercise], "the mistake was not caught"
    others = {exercise: earned[exercise] for exercise in possible if exercise != variant.exercise
              and earned[exercise] < possible[exercise]}
    assert others == {}, f"other exercises lost points: {_failures(report)}"


@pytest.mark.parametrize("variant", CORRECT, ids=lambda variant: variant.name)
def test_correct_variant_scores_full_marks(tmp_path, variant):
    report = _grade_variant(tmp_path, variant)
    assert _failures(report) == {}
    assert report.score == report.max_score == 100


def test_reference_scores_100_twenty_times():
    scores = [grade(SOLUTION).score for _ in range(20)]
    assert scores == [100.0] * 20

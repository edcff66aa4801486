"""docs/grading.md lists every check with its points and visibility."""

from autograder.grading import list_tests
from conftest import REPO_ROOT


def test_grading_doc_matches_suites():
    doc = (REPO_ROOT / "docs" / "grading.md").read_text()
    tests = list_tests()
    assert sum(test.max_score for test in tests) == 100
    for test in tests:
        row = f"| {test.max_score:g} | {test.visibility} | {test.title} |"
        assert row in doc, f"docs/grading.md has no row {row!r}"

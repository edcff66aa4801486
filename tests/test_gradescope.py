"""The Gradescope bundle: its layout, and run_autograder end to end on the real model.

run_autograder runs as Gradescope runs it, from a temporary folder standing
for /autograder, with this test's Python in place of the virtual environment
that setup.sh builds and the shared weights cache in place of source/weights.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from autograder.gradescope import find_submission
from conftest import SOLUTION, STUB

# Gradescope's results.json fields (https://gradescope-autograders.readthedocs.io/en/latest/specs/).
TOP_LEVEL_FIELDS = {
    "score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
    "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard",
}
TEST_FIELDS = {
    "score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
    "visibility", "extra_data",
}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "simple_format", "html", "md", "ansi"}


def _assert_gradescope_results(results):
    """Check a results.json object against Gradescope's published fields."""
    assert set(results) <= TOP_LEVEL_FIELDS, f"unknown fields {set(results) - TOP_LEVEL_FIELDS}"
    assert isinstance(results["score"], (int, float))
    assert isinstance(results["execution_time"], (int, float)) and results["execution_time"] >= 0
    assert isinstance(results["output"], str)
    assert results["output_format"] == "text"  # student text must not render as HTML
    assert results["stdout_visibility"] in VISIBILITIES
    assert isinstance(results["tests"], list)
    for test in results["tests"]:
        assert set(test) <= TEST_FIELDS, f"unknown fields {set(test) - TEST_FIELDS}"
        assert isinstance(test["name"], str) and test["name"]
        assert isinstance(test["output"], str)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["visibility"] in VISIBILITIES
        assert test["status"] in ("passed", "failed")
        assert all(isinstance(tag, str) for tag in test["tags"])
    if results["tests"]:
        assert results["score"] == pytest.approx(sum(test["score"] for test in results["tests"]))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    result = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "gradescope-bundle", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def autograder_root(tmp_path, bundle):
    """A folder laid out as Gradescope lays out /autograder, with an empty submission folder."""
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path / "source")
    # extractall drops the modes; Gradescope's unzip keeps them.
    for name in ("setup.sh", "run_autograder"):
        (tmp_path / "source" / name).chmod(0o755)
    shutil.copy2(tmp_path / "source" / "run_autograder", tmp_path / "run_autograder")
    (tmp_path / "submission").mkdir()
    return tmp_path


def _run_autograder(root, python=sys.executable):
    from lm_support.weights_cache import cache_root

    env = dict(os.environ, LM_GRADE_AUTOGRADER_ROOT=str(root), LM_GRADE_PYTHON=python,
               LM_SUPPORT_CACHE=str(cache_root()))
    result = subprocess.run([str(root / "run_autograder")], cwd="/", env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return json.loads((root / "results" / "results.json").read_text()), result


def test_bundle_layout(bundle):
    with zipfile.ZipFile(bundle) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        scripts = {name: archive.read(name).decode() for name in ("setup.sh", "run_autograder")}

    for name in ("setup.sh", "run_autograder"):
        assert stat.S_IMODE(infos[name].external_attr >> 16) == 0o755, f"{name} is not executable"
        assert scripts[name].startswith("#!/usr/bin/env bash\n")
    for name in ("kit/pyproject.toml", "kit/requirements.lock", "kit/README.md",
                 "kit/exercises/lab3_transformer.py", "kit/autograder/grading.py",
                 "kit/autograder/suites/pytest.ini", "kit/lm_support/loading.py"):
        assert name in infos, f"{name} is missing"
    assert not [name for name in infos if "solutions" in name or "__pycache__" in name or name.endswith(".pyc")]
    assert "apt-get install -y --no-install-recommends bubblewrap" in scripts["setup.sh"]


@pytest.mark.parametrize("name", ["setup.sh", "run_autograder"])
def test_bundle_scripts_parse(autograder_root, name):
    result = subprocess.run(["bash", "-n", str(autograder_root / "source" / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_failed_grader_still_writes_results(autograder_root):
    shutil.copy(STUB, autograder_root / "submission" / "lab3_transformer.py")
    results, run = _run_autograder(autograder_root, python="/no/such/python")
    _assert_gradescope_results(results)
    assert results["score"] == 0
    assert "fault of the grader" in results["output"]
    assert "without writing" in run.stderr


def test_empty_submission_scores_zero_with_message(autograder_root):
    results, _ = _run_autograder(autograder_root)
    _assert_gradescope_results(results)
    assert results["score"] == 0
    assert "contains no .py or .ipynb file" in results["output"]


def test_submission_found_inside_uploaded_folder(tmp_path):
    (tmp_path / "lab3").mkdir()
    (tmp_path / "lab3" / "lab3_transformer.py").write_text("")
    (tmp_path / "__MACOSX" / "lab3").mkdir(parents=True)
    (tmp_path / "__MACOSX" / "lab3" / "lab3_transformer.py").write_text("")
    assert find_submission(tmp_path) == tmp_path / "lab3" / "lab3_transformer.py"


@pytest.mark.slow
def test_solution_scores_100_on_gradescope(autograder_root):
    shutil.copy(SOLUTION, autograder_root / "submission" / "lab3_transformer.py")
    results, run = _run_autograder(autograder_root)
    _assert_gradescope_results(results)
    assert results["score"] == 100
    assert sum(test["max_score"] for test in results["tests"]) == 100
    assert all(test["status"] == "passed" for test in results["tests"])
    visibilities = {test["visibility"] for test in results["tests"]}
    assert visibilities == {"visible", "after_due_date"}
    assert "Score 100 / 100" in run.stdout  # the instructor's log


@pytest.mark.slow
def test_stub_notebook_scores_0_on_gradescope(autograder_root):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(STUB.read_text())]
    nbformat.write(notebook, autograder_root / "submission" / "lab3_transformer.ipynb")
    results, _ = _run_autograder(autograder_root)
    _assert_gradescope_results(results)
    assert results["score"] == 0
    assert sum(test["max_score"] for test in results["tests"]) == 100
    assert all("not implemented yet" in test["output"] for test in results["tests"])


@pytest.mark.slow
def test_crashing_submission_on_gradescope(autograder_root):
    # The stub, with a softmax that kills its own process at every call.
    source = STUB.read_text().replace(
        "def softmax(", "import os as _os\n\n\ndef softmax(*args, **kwargs):\n    _os._exit(3)\n\n\ndef _unused_softmax(", 1
    )
    assert "_os._exit(3)" in source
    (autograder_root / "submission" / "lab3_transformer.py").write_text(source)
    results, _ = _run_autograder(autograder_root)
    _assert_gradescope_results(results)
    assert results["score"] == 0
    softmax_tests = [test for test in results["tests"] if test["tags"] == ["softmax"]]
    assert softmax_tests
    for test in softmax_tests:
        assert test["output"]
        assert "not implemented yet" not in test["output"]

"""Reading submissions: notebooks, magics, skipped statements, folders."""

import nbformat
import pytest

from autograder.submission import SubmissionNotFound, filter_definitions, read_submission


def _notebook(path, *cells):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell) for cell in cells]
    nbformat.write(notebook, path)
    return path


def test_notebook_magics_and_calls_skipped(tmp_path):
    path = _notebook(
        tmp_path / "lab3_transformer.ipynb",
        "!pip install gemma\n%matplotlib inline\nimport numpy as np",
        "%%bash\necho hello",
        "def softmax(x):\n    return x\nsoftmax(np.zeros(3))\nEPS = 1e-9",
    )
    submission = read_submission(path)
    assert submission.syntax_error is None
    assert "def softmax" in submission.source
    assert "import numpy as np" in submission.source
    assert "EPS = 1e-9" in submission.source
    assert "softmax(np.zeros(3))" not in submission.source
    assert "echo hello" not in submission.source
    assert submission.skipped == (
        ("cell 1, line 1", "!pip install gemma"),
        ("cell 1, line 2", "%matplotlib inline"),
        ("cell 3, line 3", "softmax(np.zeros(3))"),
    )


def test_definitions_kept_with_line_numbers():
    source = "import os\nprint('x')\n\ndef f():\n    return 1\n\ntry:\n    import scipy\nexcept ImportError:\n    scipy = None\n"
    filtered, skipped = filter_definitions(source)
    assert filtered.splitlines()[3] == "def f():"
    assert "print" not in filtered
    assert "import scipy" in filtered
    assert skipped == ((2, "print('x')"),)


def test_broken_cell_skipped_alone(tmp_path):
    path = _notebook(tmp_path / "nb.ipynb", "def ok():\n    return 1", "def broken(:\n    pass", "x = 2")
    submission = read_submission(path)
    assert submission.syntax_error is None
    assert "def ok():" in submission.source
    assert "x = 2" in submission.source
    assert submission.broken_cells == ("cell 2 was skipped: SyntaxError at line 1: invalid syntax",)


def test_python_cell_magics_kept(tmp_path):
    path = _notebook(tmp_path / "nb.ipynb", "%%time\ndef timed():\n    return 1", "%%bash\necho hi")
    submission = read_submission(path)
    assert "def timed():" in submission.source
    assert "echo" not in submission.source


def test_decorated_definitions_kept():
    filtered, _ = filter_definitions("import functools\n@functools.lru_cache()\ndef f():\n    return 1\n")
    assert "@functools.lru_cache()" in filtered


def test_folder_discovery(tmp_path):
    (tmp_path / "notes.txt").write_text("not code")
    with pytest.raises(SubmissionNotFound, match="no .py or .ipynb"):
        read_submission(tmp_path)
    (tmp_path / "helper.py").write_text("x = 1\n")
    (tmp_path / "other.py").write_text("y = 2\n")
    with pytest.raises(SubmissionNotFound, match="several candidate files"):
        read_submission(tmp_path)
    (tmp_path / "lab3_transformer.py").write_text("z = 3\n")
    assert read_submission(tmp_path).path.name == "lab3_transformer.py"


def test_missing_path(tmp_path):
    with pytest.raises(SubmissionNotFound, match="does not exist"):
        read_submission(tmp_path / "absent.py")


def test_non_utf8_file(tmp_path):
    path = tmp_path / "lab3_transformer.py"
    path.write_bytes(b"x = '\xff'\n")
    assert "not UTF-8" in read_submission(path).syntax_error

"""Write the student release of the lab from the instructor's solution.

The release has two files, both generated from `solutions/`:

- `exercises/lab3_transformer.py`: every block between `### BEGIN SOLUTION`
  and `### END SOLUTION` of `solutions/lab3_transformer.py` becomes
  `raise NotImplementedError()` at the same indentation, as nbgrader does
  for notebooks.
- `exercises/lab3_transformer.ipynb`: the output of `nbgrader
  generate_assignment` for `solutions/lab3_transformer.ipynb`, run in a
  temporary course folder, so solution blocks and hidden tests are removed
  exactly as in an nbgrader course.

Usage: `python -m autograder.release`
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder import nbgrader_course

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTION_PATH = REPO_ROOT / "solutions" / "lab3_transformer.py"
STUB_PATH = REPO_ROOT / "exercises" / "lab3_transformer.py"
SOLUTION_NOTEBOOK_PATH = nbgrader_course.SOURCE_NOTEBOOK
STUDENT_NOTEBOOK_PATH = REPO_ROOT / "exercises" / nbgrader_course.NOTEBOOK_NAME

_SOLUTION_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION\n",
    flags=re.MULTILINE | re.DOTALL,
)
_STUB_BODY = "{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()\n"
# A docstring paragraph for instructors only, dropped from the release.
_INSTRUCTOR_PARAGRAPH = re.compile(r'\n\nInstructors:.*?(?=\n\n|\n""")', flags=re.DOTALL)


class ReleaseError(RuntimeError):
    """nbgrader could not generate the student notebook."""


def strip_solutions(source: str) -> str:
    """Return `source` with every solution block replaced by a stub body."""
    if "### BEGIN SOLUTION" not in source:
        raise ValueError("The solution has no '### BEGIN SOLUTION' markers.")
    stub = _SOLUTION_BLOCK.sub(lambda match: _STUB_BODY.format(indent=match["indent"]), source)
    if "### BEGIN SOLUTION" in stub or "### END SOLUTION" in stub:
        raise ValueError("Unbalanced '### BEGIN SOLUTION' / '### END SOLUTION' markers.")
    stub = _INSTRUCTOR_PARAGRAPH.sub("", stub, count=1)
    return stub.replace("(reference solution)", "(student version)", 1)


def nbgrader_environment() -> dict[str, str]:
    """Return os.environ with this interpreter's scripts folder first on PATH.

    nbgrader runs `alembic` from PATH when it creates a gradebook, so a
    virtual environment that is not activated must still come first.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def generate_student_notebook(source_notebook: Path = SOLUTION_NOTEBOOK_PATH) -> str:
    """Run `nbgrader generate_assignment` on `source_notebook` and return the student notebook's text."""
    with tempfile.TemporaryDirectory(prefix="lab3-release-") as folder:
        course = Path(folder)
        nbgrader_course.create_course(course, source_notebook=source_notebook)
        command = [sys.executable, "-m", "nbgrader", "generate_assignment", nbgrader_course.ASSIGNMENT, "--no-db"]
        completed = subprocess.run(command, cwd=course, env=nbgrader_environment(),
                                   capture_output=True, text=True, check=False)
        released = course / "release" / nbgrader_course.ASSIGNMENT / nbgrader_course.NOTEBOOK_NAME
        if completed.returncode != 0 or not released.is_file():
            raise ReleaseError(
                f"nbgrader generate_assignment failed on {source_notebook} "
                f"(exit status {completed.returncode}):\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}"
            )
        return released.read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        print("usage: python -m autograder.release  (takes no arguments)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    STUB_PATH.write_text(strip_solutions(SOLUTION_PATH.read_text(encoding="utf-8")), encoding="utf-8")
    logger.info("Wrote %s", STUB_PATH)
    try:
        notebook = generate_student_notebook()
    except ReleaseError as error:
        logger.error("%s", error)
        return 1
    STUDENT_NOTEBOOK_PATH.write_text(notebook, encoding="utf-8")
    logger.info("Wrote %s", STUDENT_NOTEBOOK_PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Create an nbgrader course folder for Lab 3.

Usage: `python -m autograder.nbgrader_course COURSE_DIR [--force]`

The folder gets `nbgrader_config.py` and the instructor's source notebook
at `source/lab3/lab3_transformer.ipynb`, nbgrader's standard layout. From
there, `nbgrader generate_assignment lab3` writes the student version to
`release/lab3/`, and `nbgrader autograde lab3` grades what is in
`submitted/STUDENT/lab3/`. `docs/instructors.md` walks through the steps.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "lab3"
NOTEBOOK_NAME = "lab3_transformer.ipynb"
SOURCE_NOTEBOOK = REPO_ROOT / "solutions" / NOTEBOOK_NAME
COURSE_ID = "lab3-decoding"

# Only the solution notebook goes into source/lab3/: nbgrader copies every
# other file of that folder into the student release unchanged, so the
# reference `solutions/lab3_transformer.py` must stay out of it.
CONFIG = f'''\
# nbgrader settings for the Lab 3 decoding course, written by
# `python -m autograder.nbgrader_course`.
c = get_config()  # noqa: F821 (nbgrader provides get_config)

c.CourseDirectory.course_id = "{COURSE_ID}"

# The first test cell of a notebook starts the grading process and loads
# Gemma 3 270M (20 to 60 s on 2 CPU cores) before it runs its checks, and a
# test cell grading generate() runs about 20 forward passes. nbgrader's
# default of 30 s per cell is too short for both.
c.Execute.timeout = 600

# Solution blocks become this stub in the student version, as in
# `exercises/lab3_transformer.py`.
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
'''


def create_course(course_dir: Path, *, force: bool = False, source_notebook: Path = SOURCE_NOTEBOOK) -> Path:
    """Write `nbgrader_config.py` and the source notebook into `course_dir`.

    Returns the path of the course's source notebook.

    Raises:
      FileExistsError: either file exists and `force` is false, so that an
        instructor's edits to the course copy are not overwritten by accident.
    """
    course_dir.mkdir(parents=True, exist_ok=True)
    config = course_dir / "nbgrader_config.py"
    notebook = course_dir / "source" / ASSIGNMENT / NOTEBOOK_NAME
    for path in (config, notebook):
        if path.exists() and not force:
            raise FileExistsError(f"{path} already exists; pass --force to overwrite it.")

    config.write_text(CONFIG, encoding="utf-8")
    notebook.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source_notebook, notebook)
    logger.info("Wrote %s and %s", config, notebook)
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.nbgrader_course",
        description="Create an nbgrader course folder holding the Lab 3 assignment.",
    )
    parser.add_argument("course_dir", type=Path, help="the course folder to create or update")
    parser.add_argument("--force", action="store_true",
                        help="overwrite an existing nbgrader_config.py and source notebook")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        create_course(args.course_dir, force=args.force)
    except FileExistsError as error:
        logger.error("%s", error)
        return 2
    print(f"Course ready in {args.course_dir}. Next: cd {args.course_dir} && nbgrader generate_assignment {ASSIGNMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

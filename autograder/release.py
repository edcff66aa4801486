"""Write the student release of the lab from the instructor's solution.

Every block between `### BEGIN SOLUTION` and `### END SOLUTION` becomes
`raise NotImplementedError(...)` at the same indentation, as nbgrader's
`generate_assignment` does for notebooks.

Usage: `python -m autograder.release [SOLUTION] [STUB]`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTION_PATH = REPO_ROOT / "solutions" / "lab3_transformer.py"
STUB_PATH = REPO_ROOT / "exercises" / "lab3_transformer.py"

_SOLUTION_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION\n",
    flags=re.MULTILINE | re.DOTALL,
)
_STUB_BODY = "{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()\n"
# A docstring paragraph for instructors only, dropped from the release.
_INSTRUCTOR_PARAGRAPH = re.compile(r'\n\nInstructors:.*?(?=\n\n|\n""")', flags=re.DOTALL)


def strip_solutions(source: str) -> str:
    """Return `source` with every solution block replaced by a stub body."""
    if "### BEGIN SOLUTION" not in source:
        raise ValueError("The solution has no '### BEGIN SOLUTION' markers.")
    stub = _SOLUTION_BLOCK.sub(lambda match: _STUB_BODY.format(indent=match["indent"]), source)
    if "### BEGIN SOLUTION" in stub or "### END SOLUTION" in stub:
        raise ValueError("Unbalanced '### BEGIN SOLUTION' / '### END SOLUTION' markers.")
    stub = _INSTRUCTOR_PARAGRAPH.sub("", stub, count=1)
    return stub.replace("(reference solution)", "(student version)", 1)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    solution = Path(args[0]) if args else SOLUTION_PATH
    stub = Path(args[1]) if len(args) > 1 else STUB_PATH
    stub.write_text(strip_solutions(solution.read_text()))
    print(f"Wrote {stub}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Read a submission (`.py`, `.ipynb` or a folder) into Python source.

The grader runs a submission's definitions, not its experiments: imports,
function and class definitions, and assignments whose value calls nothing
(constants, aliases such as `softmax = scipy.special.softmax`). Other
top-level statements (loading a model, plotting, printing, local checks) are
skipped and listed in the report, so a notebook graded top to bottom neither
loads a second model nor opens a figure. IPython magics and shell lines
(`%...`, `!...`) become calls, so they are skipped too.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

EXPECTED_NAMES = ("lab3_transformer.py", "lab3_transformer.ipynb")


class SubmissionNotFound(Exception):
    """The path contains no gradable file. The message names what to pass instead."""


@dataclasses.dataclass(frozen=True)
class Submission:
    """A submission ready to run.

    Attributes:
      path: the file that was read.
      source: the Python source that the worker executes.
      skipped: `(location, text)` of each top-level statement that was not
        run, e.g. `("line 12", "print(x)")` or `("cell 4, line 1", ...)`.
      syntax_error: a message when the code does not parse, else None.
      broken_cells: a message for each notebook cell skipped for a syntax error.
    """

    path: Path
    source: str
    skipped: tuple[tuple[str, str], ...] = ()
    syntax_error: str | None = None
    broken_cells: tuple[str, ...] = ()


def find_submission_file(path: Path) -> Path:
    """Return the file to grade at `path` (a file or a folder)."""
    if not path.exists():
        raise SubmissionNotFound(f"{path} does not exist; pass a .py or .ipynb file or a folder holding one.")
    if path.is_file():
        if path.suffix not in (".py", ".ipynb"):
            raise SubmissionNotFound(f"{path} is not a .py or .ipynb file.")
        return path
    for name in EXPECTED_NAMES:
        if (path / name).is_file():
            return path / name
    candidates = sorted(p for p in path.iterdir() if p.suffix in (".py", ".ipynb") and p.is_file())
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SubmissionNotFound(f"{path} contains no .py or .ipynb file; expected {' or '.join(EXPECTED_NAMES)}.")
    names = ", ".join(p.name for p in candidates)
    raise SubmissionNotFound(
        f"{path} contains several candidate files ({names}); name yours {EXPECTED_NAMES[0]} or {EXPECTED_NAMES[1]}."
    )


# Cell magics whose body is ordinary Python.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}


def _strip_ipython(cell_source: str) -> str:
    """Turn IPython syntax into plain Python.

    IPython's own input transformer rewrites magics and shell lines as
    `get_ipython()...` calls, which the definition filter then skips. The
    body of `%%time`, `%%timeit`, `%%capture` and `%%prun` cells is kept;
    other cell magics (`%%bash`, `%%html`, ...) hold no Python and are dropped.
    """
    stripped = cell_source.lstrip()
    if stripped.startswith("%%"):
        magic = stripped[2:].split(maxsplit=1)[0] if stripped[2:].strip() else ""
        if magic in _PYTHON_CELL_MAGICS:
            # Keep the line count: the magic line becomes blank.
            return "\n" + stripped.split("\n", 1)[1] if "\n" in stripped else ""
        return ""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return _strip_shell_lines(cell_source)
    return TransformerManager().transform_cell(cell_source)


def _strip_shell_lines(cell_source: str) -> str:
    """Fallback without IPython: replace `%` and `!` lines with `pass`."""
    kept = []
    for line in cell_source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass"
        kept.append(line)
    return "\n".join(kept)


def _notebook_source(path: Path) -> tuple[str, list[tuple[int, int]], list[str]]:
    """Join the code cells into one source.

    Returns the source, (first line, cell number) of each code cell, and a
    message for each cell left out because it does not parse: one broken
    experiment cell should not cost the functions defined in other cells.
    """
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    parts, starts, broken, line = [], [], [], 1
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        code = _strip_ipython(cell.source).rstrip("\n") + "\n"
        # Notes quote what the student typed, not IPython's rewrite of it.
        originals = cell.source.rstrip("\n").splitlines()
        rewritten = code.splitlines()
        if len(originals) == len(rewritten):
            code = "\n".join(
                f"{line}  # {original}" if original.lstrip().startswith(("%", "!")) else line
                for line, original in zip(rewritten, originals)
            ) + "\n"
        try:
            ast.parse(code)
        except SyntaxError as error:
            broken.append(f"cell {number} was skipped: SyntaxError at line {error.lineno}: {error.msg}")
            code = "\n" * code.count("\n")  # keep the line numbers of later cells
        parts.append(code)
        starts.append((line, number))
        line += code.count("\n") + 1  # one blank line between cells
    return "\n".join(parts), starts, broken


def _locate(line: int, cell_starts: list[tuple[int, int]] | None) -> str:
    """Describe a line of the joined source as 'line N' or 'cell C, line N'."""
    if not cell_starts:
        return f"line {line}"
    start, number = max((entry for entry in cell_starts if entry[0] <= line), default=cell_starts[0])
    return f"cell {number}, line {line - start + 1}"


def _calls_something(node: ast.AST) -> bool:
    return any(isinstance(child, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom)) for child in ast.walk(node))


def _is_definition(node: ast.stmt) -> bool:
    """Return True for a top-level statement that only defines names."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return True  # docstrings
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return node.value is None or not _calls_something(node.value)
    if isinstance(node, ast.Try):
        blocks = [node.body, node.orelse, node.finalbody] + [handler.body for handler in node.handlers]
        return all(_is_definition(child) for block in blocks for child in block)
    if isinstance(node, ast.If):
        return not _calls_something(node.test) and all(_is_definition(child) for child in node.body + node.orelse)
    return False


def _first_line(node: ast.stmt) -> int:
    """Return the statement's first line, counting decorators."""
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno] + [decorator.lineno for decorator in decorators])


def filter_definitions(source: str) -> tuple[str, tuple[tuple[int, str], ...]]:
    """Return (source with only definitions, the skipped statements)."""
    tree = ast.parse(source)
    kept, skipped = [], []
    lines = source.splitlines()
    for node in tree.body:
        if _is_definition(node):
            kept.append(node)
        else:
            text = lines[node.lineno - 1].strip()
            if text.startswith("get_ipython()") and "  # " in text:
                text = text.split("  # ", 1)[1]  # the magic as typed
            skipped.append((node.lineno, text if len(text) <= 80 else text[:79] + "…"))
    # Keep the original line numbers in tracebacks: blank out the lines of
    # skipped statements instead of unparsing the tree.
    kept_lines = {line for node in kept for line in range(_first_line(node), node.end_lineno + 1)}
    filtered = [line if number in kept_lines else "" for number, line in enumerate(lines, start=1)]
    return "\n".join(filtered) + "\n", tuple(skipped)


def read_submission(path: Path) -> Submission:
    """Read and filter the submission at `path` (file or folder)."""
    file = find_submission_file(path)
    cell_starts, broken_cells = None, []
    try:
        if file.suffix == ".ipynb":
            raw, cell_starts, broken_cells = _notebook_source(file)
        else:
            raw = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        return Submission(file, "", syntax_error=f"{file.name} is not UTF-8 text ({error.reason}).")
    except Exception as error:  # nbformat raises several types for a broken notebook
        return Submission(file, "", syntax_error=f"{file.name} could not be read as a notebook: {error}")
    try:
        source, skipped = filter_definitions(raw)
    except SyntaxError as error:
        location = _locate(error.lineno, cell_starts) if error.lineno else "an unknown line"
        text = (error.text or "").strip()
        return Submission(file, raw, syntax_error=f"SyntaxError at {location}: {error.msg}" + (f"\n    {text}" if text else ""))
    located = tuple((_locate(line, cell_starts), text) for line, text in skipped)
    return Submission(file, source, located, broken_cells=tuple(broken_cells))

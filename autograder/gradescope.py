"""The Gradescope autograder: the zip that `lm-grade gradescope-bundle` writes and the entry point its scripts call.

Gradescope's specification (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
the zip contains `setup.sh` and `run_autograder` at its root. Gradescope unpacks
it into /autograder/source and runs `setup.sh` as root once, when it builds
the autograder image. For each submission it puts the student's files in
/autograder/submission, runs /autograder/run_autograder from /autograder and
reads /autograder/results/results.json.

The zip contains the two scripts and `kit/`, the kit's source: pyproject.toml,
requirements.lock, README.md, `autograder/`, `lm_support/` and the student
stub `exercises/lab3_transformer.py`, whose grading checks the installation.
It contains no reference solution. After `setup.sh`, /autograder/source also
contains `venv/`, `weights/` (the converted weights, `LM_SUPPORT_CACHE`) and
`jax-cache/` (XLA programs compiled by the model's warm-up).

`python -m autograder.gradescope run --root DIR` grades DIR/submission and
always writes DIR/results/results.json; `... warm --source DIR` fills the
caches at image build time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT_ENV_VAR = "LM_GRADE_AUTOGRADER_ROOT"
DEFAULT_ROOT = Path("/autograder")
SCRIPTS_DIR = Path(__file__).resolve().parent / "gradescope_files"
SCRIPTS = ("setup.sh", "run_autograder")
KIT_FILES = ("pyproject.toml", "requirements.lock", "README.md", "exercises/lab3_transformer.py")
KIT_PACKAGES = ("autograder", "lm_support")

GRADER_FAILED = (
    "The autograder failed before it could grade your submission. This is a fault of the grader, "
    "not of your code: your instructor can see the details in the autograder output and rerun it."
)

# Gradescope renders the top-level output as HTML ("simple_format") unless
# results.json sets a format. Outputs quote student code and prints, so all are plain text.
_TEXT_FORMATS = {"output_format": "text", "test_output_format": "text", "test_name_format": "text"}


class BundleError(Exception):
    """The bundle cannot be built; the message names the missing file."""


# Building the zip.

def _kit_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _kit_files(kit_root: Path) -> list[Path]:
    """Return the kit's files to pack, relative to `kit_root`."""
    missing = [name for name in (*KIT_FILES, *KIT_PACKAGES) if not (kit_root / name).exists()]
    missing += [f"autograder/gradescope_files/{name}" for name in SCRIPTS if not (SCRIPTS_DIR / name).is_file()]
    if missing:
        raise BundleError(
            f"{kit_root} is not a complete checkout of the kit (missing: {', '.join(missing)}); "
            "run lm-grade gradescope-bundle from a source checkout installed with 'pip install -e .'."
        )
    files = [Path(name) for name in KIT_FILES]
    for package in KIT_PACKAGES:
        for path in sorted((kit_root / package).rglob("*")):
            relative = path.relative_to(kit_root)
            if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
                files.append(relative)
    return files


def _add_file(archive: zipfile.ZipFile, source: Path, name: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=time.localtime(source.stat().st_mtime)[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16  # regular file and its mode
    archive.writestr(info, source.read_bytes())


def build_bundle(output: Path) -> Path:
    """Write the autograder zip to `output` and return its path."""
    kit_root = _kit_root()
    files = _kit_files(kit_root)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)[1])
    try:
        with zipfile.ZipFile(staging, "w") as archive:
            for name in SCRIPTS:
                _add_file(archive, SCRIPTS_DIR / name, name, executable=True)
            for relative in files:
                _add_file(archive, kit_root / relative, f"kit/{relative.as_posix()}")
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o666 & ~umask)  # mkstemp creates the file readable by its owner only
        os.replace(staging, output)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    logger.info("Wrote %s (%d files, %.0f kB); upload it as the autograder of a Gradescope programming assignment",
                output, len(files) + len(SCRIPTS), output.stat().st_size / 1000)
    return output


# Inside the Gradescope image.

def configure_caches(source: Path) -> None:
    """Point the weights and XLA compilation caches at `source`, unless the environment already does.

    Must run before JAX is imported: JAX reads these variables once.
    """
    os.environ.setdefault("LM_SUPPORT_CACHE", str(source / "weights"))
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(source / "jax-cache"))
    # Cache every compiled program, however quick to compile or small.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")


def results_payload(report) -> dict:
    """Return `report` as a Gradescope results.json object, with plain-text outputs."""
    from autograder.reports import to_gradescope

    return json.loads(to_gradescope(report))


def failure_payload(message: str, execution_seconds: float = 0.0) -> dict:
    """Return a results.json object with a score of 0 and `message` for the student."""
    return {"score": 0.0, "execution_time": round(execution_seconds, 3), "output": message, "tests": [],
            **_TEXT_FORMATS, "stdout_visibility": "hidden"}


def write_results(path: Path, payload: dict) -> None:
    """Write results.json atomically, so that run_autograder never reads a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.partial")
    staging.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(staging, path)


def find_submission(folder: Path) -> Path:
    """Return the file to grade in Gradescope's submission folder.

    Students may upload a zip with a folder inside; when the top level contains
    no candidate, a single `lab3_transformer.py` or `.ipynb` anywhere below is used.
    """
    from autograder.submission import EXPECTED_NAMES, SubmissionNotFound, find_submission_file

    try:
        return find_submission_file(folder)
    except SubmissionNotFound:
        nested = sorted(
            path for path in folder.rglob("*")
            if path.name in EXPECTED_NAMES and path.is_file()
            and not any(part.startswith((".", "__MACOSX")) for part in path.relative_to(folder).parts)
        )
        if len(nested) == 1:
            return nested[0]
        raise


def run(root: Path) -> None:
    """Grade root/submission and write root/results/results.json, also when grading raises."""
    from autograder.submission import SubmissionNotFound

    configure_caches(root / "source")
    results = root / "results" / "results.json"
    started = time.monotonic()
    try:
        path = find_submission(root / "submission")
        from autograder.grading import grade

        logger.info("Grading %s", path)
        report = grade(path)
        payload = results_payload(report)
        logger.info("Score %g / %g in %.1f s", report.score, report.max_score, report.execution_seconds)
    except SubmissionNotFound as error:
        logger.warning("No submission to grade: %s", error)
        payload = failure_payload(f"Nothing was graded: {error}", time.monotonic() - started)
    except Exception:  # noqa: BLE001  (the student still gets a results.json)
        logger.exception("The grader failed")
        payload = failure_payload(GRADER_FAILED, time.monotonic() - started)
    write_results(results, payload)
    logger.info("Wrote %s", results)


def warm(source: Path, stub: Path) -> None:
    """Convert the weights, compile the model's forward passes and grade the stub once.

    Raises RuntimeError when the stub's report is not the expected score of 0
    out of 100, so that a broken installation fails the image build.
    """
    configure_caches(source)
    from lm_support.prepare import prepare

    started = time.monotonic()
    prepare()
    logger.info("Loaded and compiled the model in %.0f s", time.monotonic() - started)

    from autograder.grading import grade

    report = grade(stub)
    if report.max_score != 100 or report.score != 0 or not report.tests:
        raise RuntimeError(
            f"Grading the stub {stub} gave {report.score:g} / {report.max_score:g} over {len(report.tests)} "
            "tests instead of 0 / 100: the installation is broken. Notes:\n" + "\n".join(report.notes)
        )
    logger.info("Graded the stub in %.0f s: the autograder is ready", report.execution_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="grade root/submission into root/results/results.json")
    run_parser.add_argument("--root", type=Path, default=Path(os.environ.get(ROOT_ENV_VAR, DEFAULT_ROOT)),
                            help=f"the autograder folder (default: ${ROOT_ENV_VAR}, else {DEFAULT_ROOT})")
    warm_parser = commands.add_parser("warm", help="fill the weights and compilation caches in the source folder")
    warm_parser.add_argument("--source", type=Path, required=True, help="the unpacked bundle (/autograder/source)")
    args = parser.parse_args(argv)

    from lm_support import _quiet  # noqa: F401  (sets the backend variables before jax loads)
    from lm_support._quiet import silence_python_loggers

    # Gradescope shows standard output to instructors only.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    silence_python_loggers()
    if args.command == "run":
        run(args.root)
    else:
        warm(args.source, args.source / "kit" / "exercises" / "lab3_transformer.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())

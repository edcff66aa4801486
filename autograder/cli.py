"""`lm-grade`: grade Lab 3 submissions against the real Gemma 3 model.

`lm-grade SUBMISSION` grades one submission; `lm-grade batch` grades a
folder of them into a gradebook; `lm-grade gradescope-bundle` writes a
Gradescope autograder zip.

Exit status: 0 when a report, gradebook or bundle was written, whatever the
scores; 1 when the bundle could not be built; 2 for a usage error (unknown
option, missing path, or an official checkpoint for `--model` that is
missing or does not fit the model); 3 when the isolation level requested
with `--isolation` does not work on this machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from lm_support import _quiet  # noqa: F401  (before anything imports jax)

from autograder.submission import SubmissionNotFound

logger = logging.getLogger("autograder")

USAGE_ERROR = 2
FAILURE = 1
ISOLATION_ERROR = 3


def _parser() -> argparse.ArgumentParser:
    from autograder.confinement import MODES
    from autograder.reports import FORMATS  # light: no pytest, JAX or model

    parser = argparse.ArgumentParser(
        prog="lm-grade",
        description="Grade a Lab 3 submission (.py, .ipynb or a folder holding one) on the real Gemma 3 model.",
    )
    parser.add_argument("submission", nargs="?", type=Path, help="the .py or .ipynb file, or a folder holding one")
    parser.add_argument("--format", choices=FORMATS, default="text", help="report format (default: text)")
    parser.add_argument("--output", type=Path, help="write the report to this file instead of standard output")
    parser.add_argument("--public-only", action="store_true", help="run only the tests visible to students")
    parser.add_argument("--list-tests", action="store_true", help="list every test with its points and exit")
    parser.add_argument("--model", default="Gemma-270M", help="model that computes the reference values: Gemma-270M (default, embedded), Gemma-1B or Gemma-4B (official checkpoints, see docs/models.md)")
    parser.add_argument(
        "--isolation", choices=MODES, default=None,
        help="how student code is confined: auto (the strongest level that works here, the default "
             "unless $LM_GRADE_ISOLATION names another), or exactly bubblewrap, namespaces or none; "
             "a named level that does not work stops lm-grade",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging details to standard error")
    parser.epilog = (
        "Other commands: 'lm-grade batch --help' grades a folder of submissions into a gradebook, "
        "'lm-grade gradescope-bundle --help' writes a Gradescope autograder zip. "
        "To grade a submission named batch or gradescope-bundle, pass it as ./batch."
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of jobs {text!r}; pass a whole number of 1 or more") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid number of jobs {value}; pass 1 or more")
    return value


def _batch_parser() -> argparse.ArgumentParser:
    from autograder.batch import GRADEBOOK_FORMATS, REPORT_FORMATS
    from autograder.confinement import MODES

    parser = argparse.ArgumentParser(
        prog="lm-grade batch",
        description=(
            "Grade a folder of submissions, one .py or .ipynb file or one folder per student, on the real "
            "Gemma 3 model. Writes a gradebook and one report per student in the folder "
            "<gradebook name without suffix>-reports beside it (grades.csv -> grades-reports/). "
            "A submission that cannot be graded gets a score of 0 and a note; the batch goes on."
        ),
    )
    parser.add_argument("folder", type=Path, help="the folder that contains one submission per student")
    parser.add_argument("--output", type=Path, required=True,
                        help="gradebook file to write, e.g. grades.csv (reports go to grades-reports/)")
    parser.add_argument("--format", choices=GRADEBOOK_FORMATS, default="csv",
                        help="gradebook format: csv (student, score, max_score, points per exercise, note) "
                             "or junit (one test suite per student, for CI systems); default: csv")
    parser.add_argument("--report-format", choices=REPORT_FORMATS, default="text",
                        help="format of each student's report (default: text)")
    parser.add_argument("--jobs", type=_positive_int, default=1,
                        help="number of worker processes; each loads the model once and needs up to "
                             "3 GB of memory (default: 1)")
    parser.add_argument("--public-only", action="store_true", help="run only the tests visible to students")
    parser.add_argument("--model", default="Gemma-270M", help="model for reference values (default: Gemma-270M)")
    parser.add_argument("--isolation", choices=MODES, default=None,
                        help="how student code is confined, as for a single submission; a named level "
                             "that does not work stops the batch before it grades anything")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging details to standard error")
    return parser


def _bundle_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lm-grade gradescope-bundle",
        description=(
            "Write a Gradescope autograder zip: setup.sh installs the kit, converts the weights and fills the "
            "JAX compilation cache when Gradescope builds the image; run_autograder grades each submission. "
            "Run it from a checkout of the kit (it packs pyproject.toml and requirements.lock)."
        ),
    )
    parser.add_argument("output", type=Path, help="the zip file to write, e.g. lab3-autograder.zip")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging details to standard error")
    return parser


def _configure_logging(verbose: bool) -> None:
    from lm_support._quiet import silence_python_loggers

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="lm-grade: %(message)s",
        stream=sys.stderr,
    )
    silence_python_loggers()


def _list_tests() -> str:
    from autograder.grading import list_tests

    lines = [f"{'points':>6}  {'visibility':<15} test", ""]
    total = 0.0
    for test in list_tests():
        total += test.max_score
        lines.append(f"{test.max_score:>6g}  {test.visibility:<15} {test.name}")
    lines += ["", f"{total:>6g}  total"]
    return "\n".join(lines) + "\n"


def _stop_on_sigterm(signum, frame) -> None:
    # Unwind normally, so the sandbox's context manager kills the child.
    raise SystemExit(128 + signum)


def _batch_main(argv: list[str]) -> int:
    parser = _batch_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    from autograder.batch import BatchError, run_batch
    from lm_support import MODEL_NAMES

    if args.model not in MODEL_NAMES:
        parser.error(f"unknown model {args.model!r}; choose one of {', '.join(MODEL_NAMES)}")
    if args.isolation is not None:
        from autograder.confinement import MODE_ENV_VAR, IsolationUnavailable, choose

        try:
            choose(args.isolation)
        except IsolationUnavailable as error:
            print(f"lm-grade batch: error: {error}", file=sys.stderr)
            return ISOLATION_ERROR
        os.environ[MODE_ENV_VAR] = args.isolation  # inherited by the worker processes
    try:
        run_batch(
            args.folder, args.output, gradebook_format=args.format, report_format=args.report_format,
            jobs=args.jobs, model_name=args.model, public_only=args.public_only,
        )
    except BatchError as error:
        print(f"lm-grade batch: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    return 0


def _bundle_main(argv: list[str]) -> int:
    args = _bundle_parser().parse_args(argv)
    _configure_logging(args.verbose)

    from autograder.gradescope import BundleError, build_bundle

    try:
        build_bundle(args.output)
    except BundleError as error:
        print(f"lm-grade gradescope-bundle: error: {error}", file=sys.stderr)
        return FAILURE
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "batch":
        return _batch_main(argv[1:])
    if argv and argv[0] == "gradescope-bundle":
        return _bundle_main(argv[1:])

    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    # Usage errors first: they need none of the heavy imports below.
    from autograder.submission import find_submission_file
    from lm_support import MODEL_NAMES

    if not args.list_tests:
        if args.submission is None:
            parser.error("the submission path is required (or pass --list-tests)")
        if args.model not in MODEL_NAMES:
            parser.error(f"unknown model {args.model!r}; choose one of {', '.join(MODEL_NAMES)}")
        try:
            find_submission_file(args.submission)
        except SubmissionNotFound as error:
            print(f"lm-grade: error: {error}", file=sys.stderr)
            return USAGE_ERROR

    if args.list_tests:
        sys.stdout.write(_list_tests())
        return 0

    from autograder.grading import grade
    from autograder.reports import render
    from lm_support import load_model
    from lm_support.checkpoints import CheckpointMismatchError

    # Load the model before grading, so a missing or wrong checkpoint is one
    # usage error instead of a grader error in every check. The suites'
    # `model` fixture then gets the same object from `load_model`'s cache.
    try:
        load_model(args.model)
    except (FileNotFoundError, CheckpointMismatchError) as error:
        print(f"lm-grade: error: {error}", file=sys.stderr)
        return USAGE_ERROR

    from autograder.confinement import IsolationUnavailable

    logger.info("Grading %s on %s", args.submission, args.model)
    try:
        report = grade(args.submission, model_name=args.model, public_only=args.public_only,
                       isolation=args.isolation)
    except IsolationUnavailable as error:
        print(f"lm-grade: error: {error}", file=sys.stderr)
        return ISOLATION_ERROR
    text = render(report, args.format)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        logger.info("Score %g / %g, report written to %s", report.score, report.max_score, args.output)
    else:
        sys.stdout.write(text)
    return 0


def run() -> None:
    """Run `main` as the `lm-grade` command, then exit without the interpreter's shutdown.

    Finalising JAX's and TensorFlow's modules and native state takes about
    1.5 s on 2 cores, longer than many checks. By the time `main` returns,
    the report is written and closed and every sandbox is stopped, so only
    the standard streams and the log handlers need flushing.
    """
    code = main()
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: let the normal exit report it
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    run()

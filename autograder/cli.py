"""`lm-grade`: grade a Lab 3 submission against the real Gemma 3 model.

Exit status: 0 when a report was produced, whatever the score; 2 for a usage
error (unknown option, missing path, or an official checkpoint for `--model`
that is missing or does not fit the model).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from lm_support import _quiet  # noqa: F401  (before anything imports jax)

from autograder.submission import SubmissionNotFound

logger = logging.getLogger("autograder")

USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
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


def main(argv: list[str] | None = None) -> int:
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

    logger.info("Grading %s on %s", args.submission, args.model)
    report = grade(args.submission, model_name=args.model, public_only=args.public_only)
    text = render(report, args.format)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        logger.info("Score %g / %g, report written to %s", report.score, report.max_score, args.output)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

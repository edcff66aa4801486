"""Measure what isolating student code costs when grading the reference solution.

Grades `solutions/lab3_transformer.py` with each isolation level and with an
in-process peer that runs the solution's functions in this process (through
the same wire encoding, so only the process boundary differs). The runs are
interleaved, after one warm-up run of each, and the median of `--repeats` is
reported with its ratio to the in-process peer.

    .venv/bin/python bench/isolation_overhead.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from lm_support import _quiet  # noqa: F401  (before anything imports jax)

from autograder import channel, confinement, sandbox, worker
from autograder.grading import run_suites
from autograder.student import StudentCode
from autograder.submission import read_submission

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTION = REPO_ROOT / "solutions" / "lab3_transformer.py"


class _DirectLink:
    """A worker link that runs model requests in this process."""

    def __init__(self, on_ask):
        self.on_ask = on_ask

    def ask(self, method, args=(), kwargs=None):
        wire_args = [channel.encode_value(value) for value in args]
        wire_kwargs = {name: channel.encode_value(value) for name, value in (kwargs or {}).items()}
        value = self.on_ask(method, [channel.decode_value(arg) for arg in wire_args],
                            {name: channel.decode_value(item) for name, item in wire_kwargs.items()})
        return channel.decode_value(channel.encode_value(value))


class InProcessPeer(sandbox.Sandbox):
    """Runs the submission in this process: a timing peer only, never for untrusted code."""

    def __init__(self, source: str):
        super().__init__(source, isolation="none")
        self._module = None

    def start(self) -> None:
        self._module = worker._load(self.source)
        self.functions = sorted(name for name, value in vars(self._module).items() if callable(value))

    def stop(self) -> None:
        pass

    def call(self, function, args, kwargs, on_ask=None, use_reference=(), repeat_with_keys=None,
             return_argument=None):
        message = {"op": "call", "function": function, "args": args, "kwargs": kwargs,
                   "use_reference": list(use_reference), "repeat_with_keys": repeat_with_keys,
                   "return_argument": return_argument}
        reply = worker._call(_DirectLink(on_ask), self._module, json.loads(json.dumps(message)))
        if reply["op"] == "returned":
            return channel.decode_value(json.loads(json.dumps(reply))["value"])
        raise sandbox.StudentError(function, str(reply.get("type")), str(reply.get("message")), "")


def grade_once(source: str, level: str) -> tuple[float, float]:
    """Grade `source`; return (seconds, score)."""
    started = time.monotonic()
    box = InProcessPeer(source) if level == "in-process" else sandbox.Sandbox(source, isolation=level)
    with box:
        box.start()
        results = run_suites(StudentCode(box), "Gemma-270M", public_only=False, selection=[])
    return time.monotonic() - started, sum(result.score for result in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed gradings per level (default: 5)")
    args = parser.parse_args()

    source = read_submission(SOLUTION).source
    levels = ["in-process", *(level for level in confinement.LEVELS if _works(level))]
    times = {level: [] for level in levels}
    for round_number in range(args.repeats + 1):  # round 0 warms up
        for level in levels:
            seconds, score = grade_once(source, level)
            if score != 100:
                sys.exit(f"{level}: the reference scored {score}, not 100")
            if round_number:
                times[level].append(seconds)
            print(f"round {round_number} {level}: {seconds:.1f} s", file=sys.stderr)

    peer = statistics.median(times["in-process"])
    print(f"Grading the reference solution, median of {args.repeats} ({platform.node()}, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()})")
    print("| isolation | median (s) | ratio to in-process |")
    print("|---|---|---|")
    for level in levels:
        median = statistics.median(times[level])
        print(f"| {level} | {median:.1f} | {median / peer:.2f} |")


def _works(level: str) -> bool:
    try:
        confinement.choose(level)
    except confinement.IsolationUnavailable:
        return False
    return True


if __name__ == "__main__":
    main()

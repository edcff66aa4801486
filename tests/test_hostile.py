"""Hostile and broken submissions earn no more than their honest functions.

Each case in `hostile.py` is graded in this process with bubblewrap
isolation (the test fails where bwrap does not work, rather than run
attacks with weaker isolation). After every grading, the installed kit and
the weights cache are unchanged, no file appeared where the child aimed,
and none of the child's processes is left.
"""

import collections
import hashlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import confinement, reports
from autograder.grading import grade
from autograder.plugin import EXERCISES
from autograder.sandbox import Limits
from conftest import REPO_ROOT, SOLUTION, STUB
from hostile import ALL_CASES, FAKE_RESULTS, HEAVY_OUTPUT, INFINITE_LOOP, Hostile

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

# Short enough that the infinite loop's checks end in seconds, long enough
# for the 3,000-draw sampling calls of the honest functions.
LOOP_LIMITS = Limits(call_seconds=20)


@pytest.fixture(scope="module", autouse=True)
def require_bubblewrap():
    confinement.choose("bubblewrap")  # raises IsolationUnavailable with the reason


@pytest.fixture(scope="module")
def full_points():
    from autograder.grading import list_tests

    points = collections.Counter()
    for test in list_tests():
        points[test.exercise] += test.max_score
    return points


class Listeners:
    """A TCP listener on loopback and a Unix socket listener, counting connections."""

    def __init__(self, folder: Path):
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.socket_path = folder / "grader.sock"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(str(self.socket_path))
        self.unix.listen()
        self.connections = []
        self._threads = [threading.Thread(target=self._accept, args=(server,), daemon=True)
                         for server in (self.tcp, self.unix)]
        for thread in self._threads:
            thread.start()

    @property
    def port(self) -> int:
        return self.tcp.getsockname()[1]

    def _accept(self, server):
        try:
            while True:
                connection, _ = server.accept()
                self.connections.append(connection.recv(100))
        except OSError:  # closed by `close`
            return

    def close(self):
        self.tcp.close()
        self.unix.close()


def _snapshot(*folders: Path) -> dict:
    """Map each file under `folders` to its size, modification time and leading bytes' hash."""
    state = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                with path.open("rb") as file:
                    head = hashlib.sha256(file.read(1 << 16)).hexdigest()
                status = path.stat()
                state[str(path)] = (status.st_size, status.st_mtime_ns, head)
    return state


def _sandbox_processes() -> list[str]:
    """Return this checkout's processes that run under a sandbox user id.

    Only processes of this Python environment count, so that graders of
    other checkouts running on the machine meanwhile are not reported.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            uid = entry.stat().st_uid
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state in ("Z", "X"):  # ended, waiting to be reaped by init
            continue
        in_sandbox_range = confinement.SANDBOX_UID_BASE <= uid < confinement.SANDBOX_UID_BASE + confinement.SANDBOX_UID_COUNT
        if in_sandbox_range and command.startswith(sys.prefix):
            found.append(f"{entry.name} (uid {uid}): {command}")
    return found


def _source(case: Hostile, placeholders: dict[str, str]) -> str:
    base = SOLUTION if case.base == "solution" else STUB
    code = case.code
    for name, value in placeholders.items():
        code = code.replace(f"@{name}@", value)
    return base.read_text() + "\n\n" + code


def _expected_points(case: Hostile, full_points) -> dict[str, float]:
    default = (lambda exercise: full_points[exercise]) if case.base == "solution" else (lambda exercise: 0.0)
    return {exercise: float(case.honest_points.get(exercise, default(exercise))) for exercise in EXERCISES}


def _earned(report) -> dict[str, float]:
    earned = collections.Counter()
    for test in report.tests:
        earned[test.exercise] += test.score
    return {exercise: float(earned[exercise]) for exercise in EXERCISES}


@pytest.fixture
def attack_setup(tmp_path):
    from lm_support import weights_cache

    listeners = Listeners(tmp_path)
    placeholders = {
        "SOLUTION": str(SOLUTION),
        "REPO": str(REPO_ROOT),
        "CACHE": str(weights_cache.cache_root()),
        "SENTINEL": str(tmp_path / "forged" / "results.json"),
        "PORT": str(listeners.port),
        "SOCKET": str(listeners.socket_path),
    }
    watched = (REPO_ROOT / "autograder", REPO_ROOT / "lm_support", REPO_ROOT / "solutions",
               weights_cache.cache_root())
    before = _snapshot(*watched)
    yield placeholders, listeners
    listeners.close()

    assert _snapshot(*watched) == before, "the submission changed installed files or the weights cache"
    assert not (tmp_path / "forged").exists(), "the submission wrote outside its sandbox"
    assert not (REPO_ROOT / "results.json").exists()
    assert listeners.connections == [], "the submission reached a socket of this machine"
    assert _sandbox_processes() == [], "processes of the submission outlived its grading"


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
def test_hostile_submission_earns_only_honest_points(tmp_path, attack_setup, full_points, case):
    placeholders, _ = attack_setup
    path = tmp_path / "submission" / "lab3_transformer.py"
    path.parent.mkdir()
    path.write_text(_source(case, placeholders))

    started = time.monotonic()
    report = grade(path, isolation="bubblewrap", limits=LOOP_LIMITS if case is INFINITE_LOOP else Limits())
    logger.info("%s: %g / %g in %.1f s", case.name, report.score, report.max_score, time.monotonic() - started)

    assert len(report.tests) == 35
    assert _earned(report) == _expected_points(case, full_points)
    json.loads(reports.to_json(report))  # every format renders
    reports.to_junit(report)
    text = reports.to_text(report)
    assert [line for line in text.splitlines() if line.startswith("Score:")] == [
        f"Score: {report.score:g} / 100"
    ], "student output passed for a score line"
    assert "\x1b" not in text
    text.encode("utf-8")  # no lone surrogates
    assert not any("grader failed" in test.output for test in report.tests), "the report blames the grader"
    if case is HEAVY_OUTPUT:
        assert "Your code printed while it was imported" in text
        assert len(text) < 64_000


def test_lm_grade_report_cannot_be_forged(tmp_path, attack_setup):
    placeholders, _ = attack_setup
    placeholders["SENTINEL"] = str(tmp_path / "report.json")
    path = tmp_path / "submission" / "lab3_transformer.py"
    path.parent.mkdir()
    path.write_text(_source(FAKE_RESULTS, placeholders))

    result = subprocess.run(
        [sys.executable, "-m", "autograder.cli", str(path), "--isolation", "bubblewrap",
         "--format", "json", "--output", str(tmp_path / "report.json")],
        capture_output=True, text=True, timeout=900,
    )

    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["score"] == 0
    assert len(report["tests"]) == 35


def test_whole_submission_time_limit(tmp_path, attack_setup):
    looping = STUB.read_text() + "\n\n" + "\n\n".join(
        f"def {name}(*args, **kwargs):\n    while True:\n        pass\n" for name in EXERCISES
    )
    path = tmp_path / "lab3_transformer.py"
    path.write_text(looping)
    limits = Limits(call_seconds=5, submission_seconds=20)

    # The grader's own work (suites, model) is measured on the stub, whose calls return at once.
    started = time.monotonic()
    grade(STUB, isolation="bubblewrap", limits=limits)
    overhead = time.monotonic() - started
    started = time.monotonic()
    report = grade(path, isolation="bubblewrap", limits=limits)
    seconds = time.monotonic() - started

    assert report.score == 0
    outputs = [test.output for test in report.tests]
    assert sum("per-call time limit of 5 s" in output for output in outputs) >= 1
    assert sum("whole-submission time limit of 20 s" in output for output in outputs) >= 30
    # 20 s of student time, plus restarts of the child after each timeout.
    assert seconds < overhead + 20 + 30, f"grading took {seconds:.0f} s, the stub {overhead:.0f} s"


def test_isolation_hides_kit_files(tmp_path):
    """The child's file system view contains the worker but not the grader's secrets."""
    prefix, _ = confinement.choose("bubblewrap").command()
    probe = (
        "import os, sys\n"
        f"paths = {[str(SOLUTION), str(REPO_ROOT / 'autograder' / 'reference_ops.py'), str(REPO_ROOT / 'autograder' / 'suites'), str(REPO_ROOT / 'tests')]!r}\n"
        "print([os.path.exists(path) for path in paths])\n"
        "print(os.getuid(), os.access('/tmp', os.W_OK), os.access(sys.prefix, os.W_OK))\n"
    )
    result = subprocess.run([*prefix, sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    exists, identity = result.stdout.splitlines()
    assert exists == "[False, False, False, False]"
    uid, tmp_writable, prefix_writable = identity.split()
    assert int(uid) != 0
    assert (tmp_writable, prefix_writable) == ("True", "False")

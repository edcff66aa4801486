"""Run student code in a separate, resource-limited process.

The grader (trusted) talks to `autograder.worker` (untrusted) through two
pipes that carry only `autograder.channel` messages. The child's stdout and
stderr go to other pipes whose last few kilobytes are kept for feedback, so
any amount of output neither blocks the child nor fills the grader's memory.
A child that dies, times out or breaks the protocol is killed with its whole
process group, and the next call starts a fresh one.

`autograder.confinement` chooses how the child is confined (bubblewrap,
namespaces only, or rlimits only) and documents what each level covers.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

from autograder import channel, confinement

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of one submission's child process."""

    call_seconds: float = 60.0  # wall clock per call, excluding model time in the grader
    submission_seconds: float = 900.0  # wall clock of all calls together, model requests included
    load_seconds: float = 60.0  # importing the submission
    answer_seconds: float = 120.0  # grader time spent on model calls during one call
    cpu_seconds: int = 900  # RLIMIT_CPU of the child
    memory_bytes: int = 8 * 1024**3  # RLIMIT_AS; JAX reserves much virtual memory
    file_bytes: int = 16 * 1024**2  # RLIMIT_FSIZE: largest file the child may write
    open_files: int = 256  # RLIMIT_NOFILE
    processes: int = 64  # RLIMIT_NPROC, not enforced for root
    output_bytes: int = 8 * 1024  # kept tail of stdout and stderr


class SubmissionFailure(Exception):
    """Base of what can go wrong in student code, as seen by a test."""


class StudentError(SubmissionFailure):
    """The student's function raised an exception."""

    def __init__(self, function: str, error_type: str, message: str, traceback: str):
        super().__init__(f"{function} raised {error_type}: {message}")
        self.function = function
        self.error_type = error_type
        self.message = message
        self.traceback = traceback


class LoadError(SubmissionFailure):
    """The submission could not be imported."""

    def __init__(self, error_type: str, message: str, traceback: str):
        super().__init__(f"The submission could not be run: {error_type}: {message}")
        self.traceback = traceback


class MissingFunction(SubmissionFailure):
    def __init__(self, function: str):
        super().__init__(f"The submission does not define a function named {function}().")


class LimitExceeded(SubmissionFailure):
    """A time or resource limit ended the call."""


class InvalidReturn(SubmissionFailure):
    """The function returned something that is not plain data."""


class ChildCrashed(SubmissionFailure):
    """The child process exited or broke the protocol during a call."""


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name}(1) was not found; install util-linux, which provides it.")
    return path


def _text(value: Any) -> str:
    """Return a field of the child's message as clean text, at most 8,000 characters."""
    return channel.clean_text(str(value))[:8000]


def _tasks_of_user(uid: int) -> int:
    """Count the processes and threads that belong to `uid`, from /proc."""
    count = 0
    for pid in _pids_of_user(uid):
        try:
            count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:  # the process ended meanwhile
            continue
    return count


def _wait_for_exit(uid: int, timeout: float) -> None:
    """Wait until no running process belongs to `uid`; zombies count as ended."""
    deadline = time.monotonic() + timeout
    while True:
        running = [pid for pid in _pids_of_user(uid) if _state(pid) not in ("Z", "X", None)]
        if not running:
            return
        if time.monotonic() > deadline:
            logger.warning("Processes %s of sandbox user %d are still running after SIGKILL", running, uid)
            return
        time.sleep(0.05)


def _pids_of_user(uid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except OSError:  # the process ended meanwhile
            continue
    return pids


def _state(pid: int) -> str | None:
    """Return the state letter of a process (R, S, Z...), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


@dataclasses.dataclass
class Callback:
    """One model or tokenizer call that student code made through a proxy."""

    method: str
    args: tuple


class Sandbox:
    """A child process holding one submission, restarted after a failure.

    Args:
      source: the submission's Python source (already filtered).
      limits: resource limits.
      isolation: an `autograder.confinement.MODES` value; None reads
        `$LM_GRADE_ISOLATION` and means "auto" where it is unset.

    Raises:
      confinement.IsolationUnavailable: `isolation` names a level that does
        not work on this machine.
    """

    def __init__(self, source: str, limits: Limits = Limits(), isolation: str | None = None):
        self.source = source
        self.limits = limits
        self.confinement = confinement.choose(isolation)
        # Without a private /tmp, the child works in a folder of its own.
        self._workdir = None if self.confinement.private_tmp else tempfile.mkdtemp(prefix="lm-grade-")
        self.functions: list[str] = []
        self._process: subprocess.Popen | None = None
        self._to_child = self._from_child = -1
        self._output: collections.deque[bytes] = collections.deque()
        self._output_size = 0
        self._output_lock = threading.Lock()
        self._student_seconds = 0.0  # spent by the submission's calls, and on its model requests
        self.load_error: LoadError | None = None
        self.restarts = 0
        self._uid: int | None = None  # the child's user id, when the grader switched it

    # Process lifetime.

    def _limit_command(self, uid: int | None) -> list[str]:
        """Return the setpriv(1) and prlimit(1) prefix that limits the child.

        prlimit sets the limits and then executes the rest of the command, so
        no Python code runs between fork and exec in this multithreaded
        (JAX) process, which `preexec_fn` would do.
        """
        limits = self.limits
        command = [
            # The child gets SIGKILL if the grader dies, even without cleanup.
            _require_tool("setpriv"), "--pdeathsig", "KILL",
            _require_tool("prlimit"),
            f"--cpu={limits.cpu_seconds}",
            f"--as={limits.memory_bytes}",
            f"--fsize={limits.file_bytes}",
            f"--nofile={limits.open_files}",
            "--core=0",
        ]
        if uid is not None:
            command.append(f"--nproc={limits.processes}")
        elif os.getuid() != 0:
            # RLIMIT_NPROC counts every task of the user, the grader's own
            # threads and other programs included, so the child gets its
            # budget on top of those. Root ignores the limit.
            command.append(f"--nproc={_tasks_of_user(os.getuid()) + limits.processes}")
        return command

    def _child_environment(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TF_CPP_MIN_LOG_LEVEL")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        home = "/tmp" if self._workdir is None else self._workdir
        env.update(HOME=home, TMPDIR=home, MPLCONFIGDIR=home, JAX_PLATFORMS="cpu",
                   PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg", XLA_FLAGS="--xla_cpu_multi_thread_eigen=true")
        # One thread per numerical library: the child's arrays are small, and
        # threads count against the process limit.
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        return env

    def start(self) -> None:
        """Start a child and import the submission in it."""
        prefix, uid = self.confinement.command()
        self._uid = uid
        if self._workdir is not None and uid is not None:
            os.chown(self._workdir, uid, uid)

        to_child_read, to_child_write = os.pipe()
        from_child_read, from_child_write = os.pipe()
        # `-I` (isolated mode) ignores PYTHON* variables and the user site.
        command = [*self._limit_command(uid), *prefix, sys.executable, "-I", "-u", "-m", "autograder.worker",
                   str(to_child_read), str(from_child_write)]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(to_child_read, from_child_write),
            cwd=self._workdir or "/",
            env=self._child_environment(),
            start_new_session=True,  # its own process group, killed as a whole
        )
        os.close(to_child_read)
        os.close(from_child_write)
        self._to_child, self._from_child = to_child_write, from_child_read
        threading.Thread(target=self._drain_output, args=(self._process.stdout,), daemon=True).start()

        try:
            channel.send(self._to_child, {"op": "load", "source": self.source},
                         deadline=time.monotonic() + self.limits.load_seconds)
            reply = self._wait_reply(self.limits.load_seconds, on_ask=None, what="importing the submission")
        except (SubmissionFailure, channel.ChannelError, OSError) as error:
            # Importing again would fail again: every later call reports this.
            self.load_error = LoadError(type(error).__name__, str(error), "")
            raise self.load_error from None
        if reply["op"] == "loaded":
            functions = reply.get("functions")
            self.functions = [name for name in functions if isinstance(name, str)] if isinstance(functions, list) else []
            return
        self.load_error = LoadError(
            _text(reply.get("type", "Error")), _text(reply.get("message", "")), _text(reply.get("traceback", ""))
        )
        self.stop()
        raise self.load_error

    def stop(self) -> None:
        """Kill the child and every process it started in its group."""
        process, self._process = self._process, None
        for fd in (self._to_child, self._from_child):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_child = self._from_child = -1
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        if self._uid is not None:
            # Processes that left the group die with the PID namespace,
            # which the kernel tears down asynchronously.
            _wait_for_exit(self._uid, timeout=10.0)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child for good and delete its working directory."""
        self.stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    # Student output.

    def _drain_output(self, stream) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            with self._output_lock:
                self._output.append(chunk)
                self._output_size += len(chunk)
                while self._output_size - len(self._output[0]) >= self.limits.output_bytes:
                    self._output_size -= len(self._output.popleft())

    def take_output(self) -> str:
        """Return and clear the tail of what the child printed."""
        with self._output_lock:
            data = b"".join(self._output)
            self._output.clear()
            self._output_size = 0
        text = data[-self.limits.output_bytes:].decode("utf-8", errors="replace")
        return text

    # Calls.

    def _time_limit(self, what: str, which: str, limit: float) -> LimitExceeded:
        self.stop()
        return LimitExceeded(f"Stopped {what}: it took longer than the {which} time limit of {limit:.0f} s.")

    def _wait_reply(self, timeout: float, on_ask: Callable[[str, list, dict], Any] | None, what: str) -> dict:
        """Read messages until the child's reply, serving its model requests.

        The child's time counts against `timeout`, and the grader's time
        spent on its requests counts against `Limits.answer_seconds`. Both
        count against the whole-submission budget, so neither side can stall
        a grading.
        """
        student_seconds = answer_seconds = 0.0
        try:
            while True:
                remaining_total = (
                    self.limits.submission_seconds - self._student_seconds - student_seconds - answer_seconds
                )
                remaining = min(timeout - student_seconds, remaining_total)
                started = time.monotonic()
                ready, _, _ = select.select([self._from_child], [], [], max(remaining, 0))
                if ready:
                    message = self._receive(what, deadline=started + max(remaining, 0))
                student_seconds += time.monotonic() - started
                if not ready:
                    if remaining < remaining_total:
                        raise self._time_limit(what, "per-call", timeout)
                    raise self._time_limit(what, "whole-submission", self.limits.submission_seconds)
                if message["op"] != "ask":
                    return message

                started = time.monotonic()
                self._answer(message, on_ask)
                answer_seconds += time.monotonic() - started
                if answer_seconds > self.limits.answer_seconds:
                    raise self._time_limit(
                        what, "model-time", self.limits.answer_seconds
                    )
                if self._student_seconds + student_seconds + answer_seconds > self.limits.submission_seconds:
                    raise self._time_limit(what, "whole-submission", self.limits.submission_seconds)
        except Exception:
            # The child still waits for a reply: a grader error must not
            # leave it to take the next call for that reply.
            self.stop()
            raise
        finally:
            self._student_seconds += student_seconds + answer_seconds

    def _receive(self, what: str, deadline: float) -> dict:
        try:
            message = channel.receive(self._from_child, deadline)
        except channel.ChannelTimeout:
            raise self._time_limit(what, "per-call", self.limits.call_seconds) from None
        except (EOFError, channel.ChannelError, OSError, ValueError) as error:
            code = self._process.poll() if self._process else None
            if code is None and self._process is not None:
                try:
                    code = self._process.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
            self.stop()
            raise ChildCrashed(self._describe_exit(code, what, error)) from None
        return message

    def _describe_exit(self, code: int | None, what: str, error: Exception) -> str:
        if code is None:
            return f"The submission broke the grader's protocol while {what} ({error})."
        if code < 0:
            signal_name = signal.Signals(-code).name
            reason = {
                "SIGXCPU": f"it used more than {self.limits.cpu_seconds} s of CPU time",
                "SIGXFSZ": f"it wrote a file larger than {self.limits.file_bytes} bytes",
                "SIGKILL": "it was killed, perhaps for using too much memory",
                "SIGSEGV": "it crashed (segmentation fault), perhaps for running out of memory",
            }.get(signal_name, f"it received {signal_name}")
            return f"The submission's process ended while {what}: {reason}."
        if isinstance(error, channel.ChannelError):
            return f"The submission's process exited with status {code} while {what}, after a message the grader rejected ({error})."
        return f"The submission's process exited with status {code} while {what}."

    def _answer(self, message: dict, on_ask: Callable[[str, list, dict], Any] | None) -> None:
        try:
            if on_ask is None:
                raise ValueError("no model or tokenizer is available here")
            args = message.get("args")
            kwargs = message.get("kwargs", {})
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise ValueError("malformed request")
            value = on_ask(
                str(message.get("method")),
                [channel.decode_value(arg) for arg in args],
                {str(name): channel.decode_value(item) for name, item in kwargs.items()},
            )
            reply = {"op": "answer", "value": channel.encode_value(value)}
        except (TypeError, ValueError, IndexError, OverflowError, channel.ChannelError) as error:
            # Raised in the student's code as if the real object had raised it.
            reply = {"op": "error", "type": type(error).__name__, "message": str(error)}
        try:
            channel.send(self._to_child, reply, deadline=time.monotonic() + self.limits.call_seconds)
        except channel.ChannelTimeout:
            raise self._time_limit("returning a model result", "per-call", self.limits.call_seconds) from None
        except OSError as error:
            self.stop()
            raise ChildCrashed(f"The submission's process ended during a model call ({error}).") from None

    def call(
        self,
        function: str,
        args: list,
        kwargs: dict,
        on_ask: Callable[[str, list, dict], Any] | None = None,
        use_reference: tuple[str, ...] = (),
        repeat_with_keys: dict | None = None,
        return_argument: int | None = None,
    ) -> Any:
        """Call `function` in the child with already-encoded arguments.

        Returns the decoded return value, or raises a `SubmissionFailure`.
        With `repeat_with_keys` (`{"index", "seeds", "kind"}`), the child
        calls the function once per seed with a PRNG key at argument `index`
        and the result is the list of return values. With `return_argument`,
        the result is that argument as it is after the call.
        """
        if self.load_error is not None:
            raise self.load_error
        if self._student_seconds >= self.limits.submission_seconds:
            raise LimitExceeded(
                f"Not run: the submission used up its whole-submission time limit of "
                f"{self.limits.submission_seconds:.0f} s in earlier checks."
            )
        if self._process is None:
            self.start()
            self.restarts += 1
        if function not in self.functions:
            raise MissingFunction(function)

        message = {"op": "call", "function": function, "args": args, "kwargs": kwargs,
                   "use_reference": list(use_reference), "repeat_with_keys": repeat_with_keys,
                   "return_argument": return_argument}
        try:
            channel.send(self._to_child, message, deadline=time.monotonic() + self.limits.call_seconds)
        except channel.ChannelTimeout:
            raise self._time_limit(f"sending the arguments of {function}()", "per-call", self.limits.call_seconds) from None
        except OSError:
            self.stop()
            raise ChildCrashed("The submission's process ended before the call.") from None
        reply = self._wait_reply(self.limits.call_seconds, on_ask, what=f"running {function}()")

        op = reply["op"]
        if op == "returned":
            try:
                return channel.decode_value(reply.get("value"))
            except channel.ChannelError as error:
                raise InvalidReturn(f"The grader cannot read the value returned by {function}(): {error}.") from None
        if op == "raised":
            raise StudentError(function, _text(reply.get("type")), _text(reply.get("message")), _text(reply.get("traceback")))
        if op == "invalid":
            raise InvalidReturn(f"The value returned by {function}() is not plain data: {_text(reply.get('message'))}.")
        if op == "missing":
            raise MissingFunction(function)
        self.stop()
        raise ChildCrashed(f"The submission broke the grader's protocol while running {function}().")

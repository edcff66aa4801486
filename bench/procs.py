"""Child processes with peak resident memory (RSS) of their whole process tree.

Peak RSS is sampled. A thread sums the RSS of the child and all of its
descendants every `POLL_SECONDS` and keeps the maximum, so the figure is
the peak of the tree's concurrent memory. A spike shorter than the
polling interval can be missed.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence

import psutil

POLL_SECONDS = 0.05
THREADS = 2


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment for a measured child: 2 compute threads for every library."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(THREADS)
    env["HF_HUB_OFFLINE"] = "1"  # the peer loads local files only
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    # transformers imports TensorFlow when it is installed (the kit's
    # environment has it): the peer would pay for an import it never uses.
    env["USE_TF"] = "0"
    env["USE_FLAX"] = "0"
    env.update(extra or {})
    return env


def pin_to_cores() -> None:
    """Restrict this process (and its children) to the first `THREADS` CPUs it may use.

    XLA sizes its CPU thread pool from this affinity mask when it loads, so
    call this before importing JAX. On a machine with exactly `THREADS`
    cores it changes nothing.
    """
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) > THREADS:
        os.sched_setaffinity(0, allowed[:THREADS])


class TreeMemory:
    """Peak summed RSS, in bytes, of a process and its descendants while it runs."""

    def __init__(self, pid: int):
        self.peak_bytes = 0
        self._root = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                processes = [self._root, *self._root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for process in processes:
                try:
                    total += process.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(POLL_SECONDS)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_bytes


def run_timed(command: Sequence[str], env: dict[str, str], timeout: float) -> tuple[float, int, str]:
    """Run `command` to completion; return (wall seconds, peak tree RSS in bytes, stdout).

    Raises:
      RuntimeError: the command exited with a non-zero status.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=pin_to_cores)
    memory = TreeMemory(process.pid)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        peak = memory.stop()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with status {process.returncode}:\n{stderr[-3000:]}")
    return seconds, peak, stdout

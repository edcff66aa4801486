"""Benchmark the kit against Hugging Face transformers on PyTorch and write docs/benchmarks.md.

    .venv/bin/python -m bench --repeats 5

Needs the optional `bench` dependencies (`pip install -e .[bench]`). Every
measured item runs in fresh processes (see `bench/child.py`), pinned to 2
CPUs with 2 compute threads. Kit and transformers runs alternate, so that
machine noise hits both alike. Each figure is the median of `--repeats`
timed runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import machine
from bench.procs import THREADS, TreeMemory, child_environment, pin_to_cores, run_timed
from bench.report import Row, render_table, write_document

logger = logging.getLogger("bench")

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LM_GRADE = str(Path(sys.executable).with_name("lm-grade"))
DEFAULT_WORK_DIR = Path.home() / ".cache" / "lm_support_bench"
STEP_TIMEOUT_SECONDS = 1800
BATCH_SIZE = 20
EXPECTED_GREEDY_START = " water. She saw a man in a white shirt and a blue hat."


@dataclasses.dataclass
class PairResult:
    """Timed runs of one in-process item on both sides."""

    kit: list[dict]
    peer: list[dict]
    kit_rss_bytes: int
    peer_rss_bytes: int


class _Side:
    """A running `bench.child` process driven line by line over stdin and stdout."""

    def __init__(self, side: str, item: str, work_dir: Path, log_dir: Path):
        self.name = side
        self._stderr = open(log_dir / f"{item}-{side}.log", "w")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "bench.child", side, item, "--work-dir", str(work_dir)],
            env=child_environment(), cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True, preexec_fn=pin_to_cores,
        )
        self.memory = TreeMemory(self.process.pid)

    def read_json(self) -> dict:
        """Return the next JSON line the child prints, skipping other output."""
        for line in self.process.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"{self.name} child exited with status {self.process.wait()}; see {self._stderr.name}")

    def measure(self, command: str = "run") -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read_json()

    def close(self) -> int:
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
        self.process.wait(timeout=120)
        self._stderr.close()
        return self.memory.stop()


def run_pair(item: str, repeats: int, work_dir: Path, log_dir: Path) -> PairResult:
    """Run `item` on both sides in two processes, alternating kit and peer runs."""
    sides = [_Side("kit", item, work_dir, log_dir), _Side("peer", item, work_dir, log_dir)]
    runs: dict[str, list[dict]] = {"kit": [], "peer": []}
    try:
        for side in sides:
            side.read_json()  # "ready": loaded
        for round_number in range(repeats + 1):  # round 0 warms up
            # Alternate which side goes first, so neither always follows the other.
            for side in sides if round_number % 2 else reversed(sides):
                result = side.measure("warm" if round_number == 0 and item.startswith("generate-") else "run")
                logger.info("%s %s round %d: %.3f s", item, side.name, round_number, result["seconds"])
                if round_number:
                    runs[side.name].append(result)
    finally:
        peaks = {side.name: side.close() for side in sides}
    return PairResult(runs["kit"], runs["peer"], peaks["kit"], peaks["peer"])


def time_to_first_logits(side: str, work_dir: Path, cached: bool, log_dir: Path) -> tuple[float, int, list]:
    """Start a fresh process and time it until it prints the first logits.

    Returns (seconds, peak tree RSS in bytes, top tokens). Without `cached`,
    the kit gets empty weight and compilation cache folders, and the peer
    loads the GGUF file instead of its float32 checkpoint.
    """
    command = [PYTHON, "-m", "bench.child", side, "cold", "--work-dir", str(work_dir)]
    extra: dict[str, str] = {}
    scratch = None
    if not cached and side == "kit":
        scratch = Path(tempfile.mkdtemp(prefix="bench-cold-"))
        extra = {"LM_SUPPORT_CACHE": str(scratch / "weights"), "JAX_COMPILATION_CACHE_DIR": str(scratch / "xla")}
    if not cached and side == "peer":
        command.append("--from-gguf")
    log_path = log_dir / f"cold-{side}-{'cached' if cached else 'uncached'}.log"
    try:
        with open(log_path, "a") as stderr:
            started = time.perf_counter()
            process = subprocess.Popen(command, env=child_environment(extra), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                       stderr=stderr, text=True, preexec_fn=pin_to_cores)
            memory = TreeMemory(process.pid)
            killer = threading.Timer(STEP_TIMEOUT_SECONDS, process.kill)
            killer.start()
            seconds, top = None, []
            for line in process.stdout:
                if line.startswith("{") and json.loads(line).get("event") == "first-logits":
                    seconds = time.perf_counter() - started
                    top = json.loads(line)["top"]
            process.wait()
            killer.cancel()
            peak = memory.stop()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if seconds is None or process.returncode != 0:
        raise RuntimeError(f"cold start of {side} failed (status {process.returncode}); see {log_path}")
    return seconds, peak, top


def run_cold(cached: bool, repeats: int, work_dir: Path, log_dir: Path) -> dict:
    """Time `repeats` cold starts of each side, alternating; with `cached`, after one warm-up round.

    Without `cached` there is no warm-up round: each run converts from
    scratch anyway, and the cached runs before it have already read the
    installed packages into the page cache.
    """
    times: dict[str, list[float]] = {"kit": [], "peer": []}
    peaks = {"kit": 0, "peer": 0}
    first = 0 if cached else 1
    for round_number in range(first, repeats + 1):  # round 0 warms the page cache
        for side in ("kit", "peer") if round_number % 2 else ("peer", "kit"):
            seconds, peak, _ = time_to_first_logits(side, work_dir, cached, log_dir)
            logger.info("cold %s (%s) round %d: %.1f s", side, "cached" if cached else "nothing cached",
                        round_number, seconds)
            peaks[side] = max(peaks[side], peak)
            if round_number:
                times[side].append(seconds)
    return {"times": times, "peaks": peaks}


def grade_reference(output: Path) -> tuple[float, int]:
    """Grade the reference solution once with lm-grade; return (seconds, peak tree RSS)."""
    command = [LM_GRADE, str(REPO_ROOT / "solutions" / "lab3_transformer.py"), "--format", "json",
               "--output", str(output)]
    seconds, peak, _ = run_timed(command, child_environment(), STEP_TIMEOUT_SECONDS)
    score = json.loads(output.read_text())["score"]
    if score != 100:
        raise RuntimeError(f"the reference solution scored {score}, not 100; see {output}")
    return seconds, peak


def write_batch_folder(folder: Path, count: int) -> list[str]:
    """Write `count` submissions: the reference, the student stub, then catalogue variants."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    import catalogue

    solution = (REPO_ROOT / "solutions" / "lab3_transformer.py").read_text()
    folder.mkdir(parents=True)
    sources = {"reference": solution, "stub": (REPO_ROOT / "exercises" / "lab3_transformer.py").read_text()}
    variants = [*catalogue.WRONG, *catalogue.CORRECT]
    variant_count = count - len(sources)
    # Spread the choice over the whole catalogue: every exercise, and correct alternatives.
    for index in range(variant_count):
        variant = variants[round(index * (len(variants) - 1) / max(1, variant_count - 1))]
        sources[variant.name] = catalogue.build_source(solution, variant)
    for number, (name, source) in enumerate(list(sources.items())[:count]):
        (folder / f"{number:02d}_{name}.py").write_text(source)
    return list(sources)[:count]


def grade_batch(folder: Path, output: Path) -> tuple[float, int]:
    command = [LM_GRADE, "batch", str(folder), "--output", str(output), "--jobs", str(THREADS)]
    seconds, peak, _ = run_timed(command, child_environment(), STEP_TIMEOUT_SECONDS * 2)
    return seconds, peak


def run_floor(repeats: int) -> dict:
    _, _, stdout = run_timed([PYTHON, "-m", "bench.floor", "--repeats", str(repeats)], child_environment(),
                             STEP_TIMEOUT_SECONDS)
    return json.loads(stdout.strip().splitlines()[-1])


def prepare_peer(work_dir: Path) -> None:
    logger.info("Preparing the transformers checkpoint in %s (once)", work_dir)
    run_timed([PYTHON, "-m", "bench.child", "peer", "prepare", "--work-dir", str(work_dir)], child_environment(),
              STEP_TIMEOUT_SECONDS)


def _per_token(runs: list[dict]) -> list[float]:
    return [run["seconds"] / run["tokens"] for run in runs]


def write_results(output: Path, saved: dict) -> None:
    """Print the table and rewrite `output` from one run's saved results."""
    rows = [Row(**row) for row in saved["rows"]]
    table = render_table(rows)
    print(table)
    results = machine.render_results_section(
        command=saved["command"], before=saved["before"], after=saved["after"], table=table, rows=rows,
        floor=saved["floor"], checks=saved["checks"], batch_names=saved["batch_names"],
        total_minutes=saved["total_minutes"], expected_greedy_start=EXPECTED_GREEDY_START,
    )
    write_document(output, results)
    logger.info("Wrote %s (the run took %.0f min)", output, saved["total_minutes"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure after one warm-up (default: 5)")
    parser.add_argument("--long-repeats", type=int, default=None,
                        help="timed runs of the two longest items, generation of 100 tokens and the cold start "
                             "with nothing cached (default: --repeats)")
    parser.add_argument("--batch-repeats", type=int, default=1,
                        help="timed runs of lm-grade batch over 20 submissions (default: 1; each takes minutes)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 repeat, a batch of 3 submissions, generation of 30 tokens only")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                        help="folder for the GGUF file and the transformers checkpoint (default: %(default)s)")
    parser.add_argument("--from-results", type=Path, default=None,
                        help="measure nothing: rewrite the document from the results.json of an earlier run "
                             "(its path is logged at the start of each run)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md",
                        help="Markdown file to rewrite (default: docs/benchmarks.md)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s", stream=sys.stderr)
    repeats = 1 if args.quick else args.repeats
    long_repeats = min(repeats, args.long_repeats or repeats)
    batch_size = 3 if args.quick else BATCH_SIZE
    generation_items = ["generate-30"] if args.quick else ["generate-30", "generate-100"]
    command = " ".join([".venv/bin/python -m bench", *map(shlex.quote, argv if argv is not None else sys.argv[1:])])

    if args.from_results is not None:
        write_results(args.output, json.loads(args.from_results.read_text()))
        return 0

    started = time.monotonic()
    before = machine.describe()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    logger.info("Child logs go to %s", log_dir)
    prepare_peer(args.work_dir)

    logger.info("Measuring the floor")
    floor = run_floor(repeats)
    rows: list[Row] = []
    checks: dict[str, object] = {}
    for item, label, floor_key in [("logits-10", "next-token logits, 10-token lab prompt", "matmul-10"),
                                   ("logits-200", "next-token logits, 200-token prompt", "matmul-200")]:
        pair = run_pair(item, repeats, args.work_dir, log_dir)
        rows.append(Row(label, [r["seconds"] for r in pair.kit], [r["seconds"] for r in pair.peer],
                        floor[floor_key], pair.kit_rss_bytes, pair.peer_rss_bytes))
        if item == "logits-10":
            checks["top_kit"], checks["top_peer"] = pair.kit[0]["top"], pair.peer[0]["top"]
    for item in generation_items:
        pair = run_pair(item, long_repeats if item == "generate-100" else repeats, args.work_dir, log_dir)
        tokens = pair.kit[0]["tokens"]
        rows.append(Row(f"greedy generation, {item.removeprefix('generate-')} new tokens", _per_token(pair.kit),
                        _per_token(pair.peer), floor["matmul-1"], pair.kit_rss_bytes, pair.peer_rss_bytes, rate=True))
        checks[f"{item}_kit"], checks[f"{item}_peer"] = pair.kit[0]["text"], pair.peer[0]["text"]
        checks[f"{item}_tokens"] = (tokens, pair.peer[0]["tokens"])
    for cached, label in [(True, "cold start to first logits, converted weights cached"),
                          (False, "cold start to first logits, nothing cached")]:
        cold = run_cold(cached, repeats if cached else long_repeats, args.work_dir, log_dir)
        rows.append(Row(label, cold["times"]["kit"], cold["times"]["peer"], None,
                        cold["peaks"]["kit"], cold["peaks"]["peer"]))

    scratch = Path(tempfile.mkdtemp(prefix="bench-grade-"))
    grading, grading_peak = [], 0
    for round_number in range(repeats + 1):  # round 0 warms up
        seconds, peak = grade_reference(scratch / f"reference-{round_number}.json")
        logger.info("lm-grade reference round %d: %.1f s", round_number, seconds)
        grading_peak = max(grading_peak, peak)
        if round_number:
            grading.append(seconds)
    rows.append(Row("lm-grade of the reference solution (warm caches)", grading, kit_rss_bytes=grading_peak))
    names = write_batch_folder(scratch / "submissions", batch_size)
    batch, batch_peak = [], 0
    for round_number in range(max(1, args.batch_repeats)):
        seconds, peak = grade_batch(scratch / "submissions", scratch / f"grades-{round_number}.csv")
        logger.info("lm-grade batch round %d: %.1f s", round_number, seconds)
        batch.append(seconds)
        batch_peak = max(batch_peak, peak)
    rows.append(Row(f"lm-grade batch, {batch_size} submissions, --jobs {THREADS}", batch, kit_rss_bytes=batch_peak))
    shutil.rmtree(scratch, ignore_errors=True)

    after = machine.describe()
    total_minutes = (time.monotonic() - started) / 60
    saved = {"rows": [dataclasses.asdict(row) for row in rows], "floor": floor, "checks": checks,
             "before": before, "after": after, "command": command, "batch_names": names,
             "total_minutes": total_minutes}
    # Kept so that a failure while writing the document loses no measurement.
    (log_dir / "results.json").write_text(json.dumps(saved))
    write_results(args.output, saved)
    return 0

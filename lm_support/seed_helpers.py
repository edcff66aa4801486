"""The lab notebook's helpers, `load_gemma` and `prompt_transformer_model`.

They keep the names and return values that the original Lab 3 notebook
uses, on top of `load_model`, so the lab's cells run unchanged on the
embedded model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from lm_support._backend import jax

from lm_support import DEFAULT_MODEL
from lm_support.loading import load_model
from lm_support.model import LanguageModel
from lm_support.tokenizer import Tokenizer


def load_gemma(model_name: str = DEFAULT_MODEL) -> tuple[Tokenizer, object, dict]:
    """Load a Gemma model and return `(tokenizer, model, params)`.

    `model` is the `gemma.gm.nn` transformer and `params` its parameter tree,
    ready for `model.apply({"params": params}, tokens=...)`.
    """
    language_model = load_model(model_name)
    return language_model.tokenizer, language_model.transformer, language_model.params


def _fresh_key() -> jax.Array:
    # Seeded from the OS so that sampling varies between calls, as in the lab.
    return jax.random.key(int.from_bytes(os.urandom(4), "little"))


def generate_ids(
    model: LanguageModel,
    prompt_ids: list[int],
    max_new_tokens: int,
    do_sample: bool,
    rng: jax.Array | None,
    forbidden_ids: Sequence[int] = (),
) -> list[int]:
    """Return up to `max_new_tokens` new token ids, stopping after EOS.

    Greedy decoding takes the largest logit, the lowest id on ties. Sampling
    draws from the softmax of the logits with a key split off at every step.
    Tokens in `forbidden_ids` are never generated.
    """
    eos = int(model.tokenizer.special_tokens.EOS)
    forbidden = [int(token) for token in forbidden_ids]
    key = _fresh_key() if rng is None else rng
    context = list(prompt_ids)
    new_ids: list[int] = []
    for _ in range(max_new_tokens):
        logits = model.next_token_logits(context)
        logits[forbidden] = -np.inf
        if do_sample:
            key, step_key = jax.random.split(key)
            token_id = int(jax.random.categorical(step_key, logits))
        else:
            token_id = int(np.argmax(logits))
        if token_id == eos:
            break
        new_ids.append(token_id)
        context.append(token_id)
    return new_ids


def prompt_transformer_model(
    input_text: str,
    max_new_tokens: int = 10,
    model_name: str = DEFAULT_MODEL,
    do_sample: bool = True,
    rng: jax.Array | None = None,
) -> tuple[str, np.ndarray, Tokenizer]:
    """Continue `input_text` with the model and return what it predicts.

    Args:
      input_text: the prompt.
      max_new_tokens: the maximum number of tokens to generate.
      model_name: one of `lm_support.MODEL_NAMES`.
      do_sample: sample from the distribution when true, otherwise greedy
        decoding, which gives the same text on every run.
      rng: an optional JAX PRNG key that makes sampling repeatable; without
        one, every call draws a fresh key.

    Returns:
      `(output_text, next_token_logits, tokenizer)`: the prompt followed by the
      generated text, the float32 logits of shape `(vocab_size,)` for the token
      right after the prompt, and the tokenizer.
    """
    if not isinstance(do_sample, bool):
        raise TypeError(f"do_sample must be True or False, got {do_sample!r}.")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}.")

    model = load_model(model_name)
    prompt_ids = model.tokenizer.encode(input_text, add_bos=True)
    next_token_logits = model.next_token_logits(prompt_ids)
    # Like `gm.text.Sampler`, never emit image markers in text-only output.
    new_ids = generate_ids(model, prompt_ids, max_new_tokens, do_sample, rng, model.tokenizer.FORBIDDEN_TOKENS)
    return input_text + model.tokenizer.decode(new_ids), next_token_logits, model.tokenizer

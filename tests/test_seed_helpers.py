"""The lab notebook's helpers: load_gemma and prompt_transformer_model."""

import jax
import numpy as np
import pytest

from conftest import THIRSTY
from lm_support import load_gemma, prompt_transformer_model


def test_greedy_is_reproducible(model):
    first, logits, tokenizer = prompt_transformer_model(THIRSTY, max_new_tokens=12, do_sample=False)
    second, _, _ = prompt_transformer_model(THIRSTY, max_new_tokens=12, do_sample=False)
    assert first == second
    assert first.startswith(THIRSTY + " water. She saw a man in a")
    assert logits.shape == (262144,)
    assert tokenizer is model.tokenizer


def test_sampling_varies_without_key(model):
    texts = {prompt_transformer_model(THIRSTY, max_new_tokens=8)[0] for _ in range(3)}
    assert len(texts) > 1


def test_sampling_repeats_with_key(model):
    first = prompt_transformer_model(THIRSTY, max_new_tokens=8, rng=jax.random.key(5))[0]
    second = prompt_transformer_model(THIRSTY, max_new_tokens=8, rng=jax.random.key(5))[0]
    assert first == second


def test_load_gemma_returns_usable_parts(model):
    tokenizer, transformer, params = load_gemma("Gemma-270M")
    tokens = np.asarray([tokenizer.encode(THIRSTY, add_bos=True)])
    output = transformer.apply({"params": params}, tokens=tokens, return_last_only=True)
    assert tokenizer.decode(int(np.argmax(output.logits[0]))) == " water"


def test_do_sample_must_be_bool():
    with pytest.raises(TypeError):
        prompt_transformer_model(THIRSTY, do_sample="no")

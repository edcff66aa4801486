"""The embedded Gemma 3 270M: tokenizer ids and next-token probabilities."""

import numpy as np
import pytest

from conftest import HUNGRY, THIRSTY


def _top(model, prompt, count):
    ids = model.tokenizer.encode(prompt, add_bos=True)
    logits = model.next_token_logits(ids).astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    order = np.argsort(-probs)[:count]
    return [(model.tokenizer.decode(int(i)), float(probs[i])) for i in order]


def test_tokenizer_known_ids(model):
    ids = model.tokenizer.encode(THIRSTY, add_bos=True)
    assert ids == [2, 236863, 754, 691, 97022, 834, 1304, 3939, 3182, 573]
    assert all(type(token_id) is int for token_id in ids)


def test_tokenizer_decode_forms(model):
    tokenizer = model.tokenizer
    ids = tokenizer.encode(" water")
    assert tokenizer.decode(ids) == " water"
    assert tokenizer.decode(ids[0]) == " water"
    assert tokenizer.decode(np.asarray(ids)) == " water"
    assert tokenizer.decode(tokenizer.encode(THIRSTY, add_bos=True)) == THIRSTY
    assert (tokenizer.special_tokens.BOS, tokenizer.special_tokens.EOS, tokenizer.special_tokens.PAD) == (2, 1, 0)


def test_thirsty_top_token_is_water(model):
    top = _top(model, THIRSTY, 4)
    assert [token for token, _ in top] == [" water", " a", " him", " the"]
    # Probabilities of two independent float32/float64 implementations.
    assert [round(p, 4) for _, p in top] == pytest.approx([0.2038, 0.1631, 0.1439, 0.1274], abs=2e-4)


def test_hungry_top_five_has_food(model):
    tokens = [token for token, _ in _top(model, HUNGRY, 5)]
    assert " food" in tokens


def test_logits_shape_and_dtype(model):
    logits = model.next_token_logits(model.tokenizer.encode(HUNGRY, add_bos=True))
    assert logits.shape == (model.vocab_size,) == (262144,)
    assert logits.dtype == np.float32
    assert logits.flags.writeable


def test_padding_leaves_logits_unchanged(model):
    import jax.numpy as jnp

    ids = model.tokenizer.encode(HUNGRY, add_bos=True)
    unpadded = model.transformer.apply({"params": model.params}, tokens=jnp.asarray([ids]), return_last_only=True)
    np.testing.assert_allclose(model.next_token_logits(ids), np.asarray(unpadded.logits[0]), atol=1e-4)


@pytest.mark.parametrize("bad_ids", [[], [[2, 3]], [2, -1], [2, 262144], [2.5]])
def test_invalid_token_ids_rejected(model, bad_ids):
    with pytest.raises((ValueError, TypeError)):
        model.next_token_logits(bad_ids)


def _uncached(model, ids):
    import jax.numpy as jnp

    output = model.transformer.apply({"params": model.params}, tokens=jnp.asarray([ids]), return_last_only=True)
    return np.asarray(output.logits[0])


def test_kv_cache_matches_full_forward_pass(model):
    # A greedy run of 40 tokens from a 10-token prompt crosses the cache
    # lengths 32 and 64, so it takes decoding steps and two new prefills.
    context = model.tokenizer.encode(THIRSTY, add_bos=True)
    for _ in range(40):
        context.append(int(np.argmax(model.next_token_logits(context))))
    assert model.tokenizer.decode(context[10:]).startswith(" water. She saw a man in a white shirt and a blue hat.")

    for length in (10, 11, 16, 17, 31, 32, 33, 49, 50):
        cached = model.next_token_logits(context[:length])
        full = _uncached(model, context[:length])
        np.testing.assert_allclose(cached, full, atol=2e-4, err_msg=f"context of {length} tokens")
        assert int(np.argmax(cached)) == int(np.argmax(full))


def test_kv_cache_other_contexts(model):
    hungry = model.tokenizer.encode(HUNGRY, add_bos=True)
    thirsty = model.tokenizer.encode(THIRSTY, add_bos=True)
    model.next_token_logits(thirsty + [1234, 5678])
    # A different context, a shorter prefix and a jump of many tokens each
    # give the logits of a fresh forward pass.
    for context in (hungry, thirsty[:5], thirsty, thirsty + [1234] * 9):
        np.testing.assert_allclose(model.next_token_logits(context), _uncached(model, context), atol=2e-4)


def test_clear_cache_runs_forward_again(model):
    ids = model.tokenizer.encode(THIRSTY, add_bos=True)
    cached = model.next_token_logits(ids)
    model.clear_cache()
    assert model._state is None
    np.testing.assert_array_equal(model.next_token_logits(ids), cached)
    assert model._state is not None


def test_kv_cache_result_owned_by_caller(model):
    ids = model.tokenizer.encode(HUNGRY, add_bos=True)
    first = model.next_token_logits(ids)
    expected = first.copy()
    first[:] = 0.0
    np.testing.assert_array_equal(model.next_token_logits(ids), expected)


def test_pad_inside_context_masked(model):
    ids = model.tokenizer.encode(HUNGRY, add_bos=True)
    with_pad = ids[:4] + [model.tokenizer.special_tokens.PAD] + ids[4:]
    np.testing.assert_allclose(model.next_token_logits(with_pad), _uncached(model, with_pad), atol=1e-4)

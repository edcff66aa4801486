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

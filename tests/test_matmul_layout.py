"""Projection weights stored as the matrices XLA's CPU product reads, on the real Gemma 3 270M."""

import numpy as np

from conftest import THIRSTY
from lm_support import matmul_layout
from lm_support._backend import jax, jnp
from lm_support.model import cache_length_for, padded_length


def test_gemma_layout_round_trip(model):
    config = model.transformer.config
    params = model.params
    weights = matmul_layout.to_compute_layout(params, config)

    block = weights["layer_0"]
    assert set(block["attn"]) >= {"q_einsum", "kv_einsum"}
    assert block["attn"]["q_einsum"]["w_matrix"].shape == (config.embed_dim, config.num_heads * config.head_dim)
    assert block["mlp"]["gating_einsum_matrix"].shape == (config.embed_dim, 2 * config.hidden_dim)
    assert "gating_einsum" not in block["mlp"]
    assert weights["embedder"]["input_embedding"] is params["embedder"]["input_embedding"]  # shared, not copied

    back = matmul_layout.to_gemma_layout(weights, config)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    for restored, original in zip(jax.tree.leaves(back), jax.tree.leaves(params)):
        np.testing.assert_array_equal(np.asarray(restored), np.asarray(original))


def test_same_logits_as_gemmas_own_einsums(model):
    """The stored matrices change the memory layout, not the products."""
    ids = model.tokenizer.encode(THIRSTY, add_bos=True)
    model.clear_cache()
    ours = model.next_token_logits(ids)
    gemma = model.transformer.apply({"params": model.params}, tokens=jnp.asarray([ids]), return_last_only=True)
    np.testing.assert_allclose(ours, np.asarray(gemma.logits[0]), rtol=0, atol=1e-5)


def test_prefill_copies_no_weights(model):
    """XLA's memory analysis of the prefill program: no transposed copy of the weights.

    With `gemma`'s own layout, a 16-token prefill of Gemma 3 270M allocates about
    300 MB of temporaries, nearly all of them transposed projection weights.
    """
    length = padded_length(10)
    tokens = jnp.zeros((1, length), jnp.int32)
    positions = jnp.zeros((1, length), jnp.int32)
    mask = jnp.ones((1, length, cache_length_for(10)), bool)
    compiled = model._prefill.lower(
        model._weights, tokens, positions, mask, jnp.int32(10), cache_length=cache_length_for(10)
    ).compile()
    projections = sum(
        leaf.nbytes for path, leaf in jax.tree_util.tree_leaves_with_path(model._weights)
        if matmul_layout.MATRIX_SUFFIX in jax.tree_util.keystr(path)
    )
    assert compiled.memory_analysis().temp_size_in_bytes < projections / 4

"""Projection weights stored the way XLA's CPU matrix product reads them.

`gemma` keeps the query projection as `(heads, features, head_dim)`, the key
and value projection as `(2, kv_heads, features, head_dim)` and the gate of
the feed-forward block as `(2, hidden, features)`, and multiplies by them
with `jnp.einsum`. XLA's CPU backend (jaxlib 0.8.1) turns each of these
einsums into a matrix product whose right operand is a row-major
`(contracting, free)` matrix. It therefore transposes a copy of every such
weight on every forward pass over several tokens, about 260 MB per pass for
Gemma 3 270M. For a single token it multiplies by the gate more slowly than
by a plain matrix.

`to_compute_layout` stores these weights once as such matrices, under the
weight's name plus `MATRIX_SUFFIX`, and `on_compute_layout` runs `gemma`'s
`Einsum` modules on them. Each product is the one XLA computed after its own
transpose, so the logits do not change. Other weights, and einsums this
module does not know, keep `gemma`'s own computation.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import flax.linen as nn

from lm_support._backend import jax, jnp

MATRIX_SUFFIX = "_matrix"


@dataclasses.dataclass(frozen=True)
class _Projection:
    """One of `gemma`'s einsums with a weight, as a product with a stored matrix.

    Attributes:
      equation: the equation `gemma` calls its `Einsum` module with.
      path: where the weight sits in a block's parameters.
      weight_shape: `gemma`'s weight shape, from the transformer's config.
      to_matrix: the `(contracting, free)` matrix of a weight in `gemma`'s shape.
      to_weight: `gemma`'s weight back from the matrix and the weight's shape.
      output: `gemma`'s einsum result from `inputs @ matrix` and the weight's shape.
    """

    equation: str
    path: tuple[str, ...]
    weight_shape: Callable[[object], tuple[int, ...]]
    to_matrix: Callable[[jax.Array], jax.Array]
    to_weight: Callable[[jax.Array, tuple[int, ...]], jax.Array]
    output: Callable[[jax.Array, tuple[int, ...]], jax.Array]


_PROJECTIONS = (
    # Queries: weight (N, D, H), matrix (D, N*H).
    _Projection(
        equation="BTD,NDH->BTNH",
        path=("attn", "q_einsum", "w"),
        weight_shape=lambda c: (c.num_heads, c.embed_dim, c.head_dim),
        to_matrix=lambda w: w.transpose(1, 0, 2).reshape(w.shape[1], -1),
        to_weight=lambda m, s: m.reshape(s[1], s[0], s[2]).transpose(1, 0, 2),
        output=lambda y, s: y.reshape(*y.shape[:-1], s[0], s[2]),
    ),
    # Keys and values: weight (2, K, D, H), matrix (D, 2*K*H).
    _Projection(
        equation="BSD,CKDH->CBSKH",
        path=("attn", "kv_einsum", "w"),
        weight_shape=lambda c: (2, c.num_kv_heads, c.embed_dim, c.head_dim),
        to_matrix=lambda w: w.transpose(2, 0, 1, 3).reshape(w.shape[2], -1),
        to_weight=lambda m, s: m.reshape(s[2], s[0], s[1], s[3]).transpose(1, 2, 0, 3),
        output=lambda y, s: jnp.moveaxis(y.reshape(*y.shape[:-1], s[0], s[1], s[3]), -3, 0),
    ),
    # Feed-forward gate of a `transpose_gating_einsum` model: weight
    # (2, hidden, F), matrix (F, 2*hidden).
    _Projection(
        equation="...F,NHF->...NH",
        path=("mlp", "gating_einsum"),
        weight_shape=lambda c: (2, c.hidden_dim, c.embed_dim),
        to_matrix=lambda w: w.reshape(-1, w.shape[-1]).T,
        to_weight=lambda m, s: m.T.reshape(s),
        output=lambda y, s: y.reshape(*y.shape[:-1], s[0], s[1]),
    ),
)

_BY_EQUATION = {projection.equation: projection for projection in _PROJECTIONS}


def _convert(params: dict, config, to_matrices: bool) -> dict:
    """Copy `params`, converting each projection weight to or from its matrix.

    Arrays that are not converted are shared with `params`, not copied.
    """
    converted = dict(params)
    for block_name, block in params.items():
        if not block_name.startswith("layer_"):
            continue
        block = jax.tree.map(lambda leaf: leaf, block)  # new dicts around the same arrays
        for projection in _PROJECTIONS:
            if projection.equation == "...F,NHF->...NH" and not config.transpose_gating_einsum:
                continue
            *modules, name = projection.path
            parent = block
            for module in modules:
                parent = parent.get(module, {})
            if to_matrices and name in parent:
                parent[name + MATRIX_SUFFIX] = projection.to_matrix(parent.pop(name))
            elif not to_matrices and name + MATRIX_SUFFIX in parent:
                matrix = parent.pop(name + MATRIX_SUFFIX)
                parent[name] = projection.to_weight(matrix, projection.weight_shape(config))
        converted[block_name] = block
    return converted


def to_compute_layout(params: dict, config) -> dict:
    """Return `params` with the projection weights stored as `(contracting, free)` matrices.

    Args:
      params: `gemma`'s parameter tree of a transformer.
      config: that transformer's config (`transformer.config`).

    Only the converted weights are new arrays. Run `transformer.apply` on the
    result inside `on_compute_layout()`.
    """
    return _convert(params, config, to_matrices=True)


def to_gemma_layout(weights: dict, config) -> dict:
    """Return `gemma`'s parameter tree from the result of `to_compute_layout`."""
    return _convert(weights, config, to_matrices=False)


def _product_on_matrix(next_fun, args, kwargs, context):
    """A flax method interceptor: an `Einsum` whose matrix is stored becomes `inputs @ matrix`."""
    module = context.module
    if context.method_name == "__call__" and len(args) == 2 and not kwargs:
        equation, inputs = args
        projection = _BY_EQUATION.get(equation)
        name = f"{getattr(module, 'weight_name', '')}{MATRIX_SUFFIX}"
        if projection is not None and module.has_variable("params", name):
            matrix = module.get_variable("params", name)
            return projection.output(jnp.dot(inputs, matrix), tuple(module.shape))
    return next_fun(*args, **kwargs)


@contextlib.contextmanager
def on_compute_layout() -> Iterator[None]:
    """Within this context, `gemma`'s `Einsum` modules read the matrices of `to_compute_layout`.

    NOTE: `gemma` compiles `Transformer.__call__` with `nn.jit`, which keeps
    its first trace for each parameter tree structure. A tree from
    `to_compute_layout` has other names than `gemma`'s own, so it gets a
    trace of its own. Made outside this context, that trace fails with a
    missing parameter, so the tree never computes anything but these products.
    """
    with nn.intercept_methods(_product_on_matrix):
        yield

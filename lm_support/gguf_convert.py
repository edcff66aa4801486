"""Conversion of the Gemma 3 270M GGUF file into `gemma` library parameters.

The GGUF stores Hugging Face tensors in row-major (out, in) layout after its
shape is reversed, quantised as F32, Q8_0, Q6_K, Q5_0 or Q4_K. `gguf.quants`
dequantises each of them. This module reshapes the results into the tree
that `gemma.gm.nn.Gemma3_270M` expects, and rebuilds the SentencePiece
tokenizer from the vocabulary stored in the GGUF metadata.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# SentencePiece piece types share llama.cpp's numbering (1 normal, 2 unknown,
# 3 control, 4 user defined, 5 unused, 6 byte).
_UNKNOWN_PIECE = 2


@dataclasses.dataclass(frozen=True)
class GemmaArchitecture:
    """Hyper-parameters read from the GGUF metadata."""

    num_layers: int
    embed_dim: int
    hidden_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int


def read_architecture(reader) -> GemmaArchitecture:
    """Read the Gemma 3 hyper-parameters from a `gguf.GGUFReader`."""
    def field(name: str):
        return reader.fields[f"gemma3.{name}"].contents()

    return GemmaArchitecture(
        num_layers=int(field("block_count")),
        embed_dim=int(field("embedding_length")),
        hidden_dim=int(field("feed_forward_length")),
        num_heads=int(field("attention.head_count")),
        num_kv_heads=int(field("attention.head_count_kv")),
        head_dim=int(field("attention.key_length")),
        vocab_size=len(reader.fields["tokenizer.ggml.tokens"].data),
    )


def _dequantize(tensor) -> np.ndarray:
    """Return one GGUF tensor as float32 in Hugging Face (out, in) layout."""
    from gguf import quants

    values = quants.dequantize(tensor.data, tensor.tensor_type)
    shape = tuple(int(n) for n in reversed(tensor.shape))
    return np.asarray(values, dtype=np.float32).reshape(shape)


def _layer_params(get: Callable[[str], np.ndarray], arch: GemmaArchitecture) -> dict:
    """Map the tensors of one transformer block onto the `gemma` layout."""
    heads, head_dim, embed = arch.num_heads, arch.head_dim, arch.embed_dim
    kv_heads = arch.num_kv_heads

    # (heads*head_dim, embed) -> (heads, embed, head_dim)
    query = get("attn_q").reshape(heads, head_dim, embed).transpose(0, 2, 1)
    key = get("attn_k").reshape(kv_heads, head_dim, embed).transpose(0, 2, 1)
    value = get("attn_v").reshape(kv_heads, head_dim, embed).transpose(0, 2, 1)
    # (embed, heads*head_dim) -> (heads, head_dim, embed)
    output = get("attn_output").reshape(embed, heads, head_dim).transpose(1, 2, 0)

    # llama.cpp stores Gemma norm weights as `1 + scale`, while the `gemma`
    # library multiplies activations by `1 + scale`: store `scale` alone.
    def norm(name: str) -> dict:
        return {"scale": get(name) - 1.0}

    return {
        "attn": {
            "q_einsum": {"w": query},
            "kv_einsum": {"w": np.stack([key, value])},
            "attn_vec_einsum": {"w": output},
            "_query_norm": norm("attn_q_norm"),
            "_key_norm": norm("attn_k_norm"),
        },
        "mlp": {
            "gating_einsum": np.stack([get("ffn_gate"), get("ffn_up")]),
            "linear": get("ffn_down").T,
        },
        "pre_attention_norm": norm("attn_norm"),
        "post_attention_norm": norm("post_attention_norm"),
        "pre_ffw_norm": norm("ffn_norm"),
        "post_ffw_norm": norm("post_ffw_norm"),
    }


def convert_params(reader, progress: Callable[[Iterator], Iterator] = iter) -> dict:
    """Dequantise every tensor into a nested float32 parameter tree.

    Args:
      reader: a `gguf.GGUFReader` over the Gemma 3 GGUF file.
      progress: wraps the iterator over layers, for example `tqdm.tqdm`.

    Returns:
      The `params` tree of `gemma.gm.nn.Gemma3_270M`, as NumPy float32 arrays.
    """
    arch = read_architecture(reader)
    tensors = {tensor.name: tensor for tensor in reader.tensors}

    params: dict = {
        "embedder": {"input_embedding": _dequantize(tensors["token_embd.weight"])},
        "final_norm": {"scale": _dequantize(tensors["output_norm.weight"]) - 1.0},
    }
    for index in progress(range(arch.num_layers)):
        def get(name: str, index: int = index) -> np.ndarray:
            return _dequantize(tensors[f"blk.{index}.{name}.weight"])

        params[f"layer_{index}"] = _layer_params(get, arch)
    return params


def build_tokenizer_proto(reader) -> bytes:
    """Rebuild a serialised SentencePiece `ModelProto` from the GGUF vocabulary.

    The GGUF keeps every piece with its score and type. SentencePiece also
    needs the model type (BPE with byte fallback) and a normaliser that leaves
    text untouched apart from escaping spaces as U+2581.
    """
    from sentencepiece import sentencepiece_model_pb2 as sp_model

    fields = reader.fields
    pieces = fields["tokenizer.ggml.tokens"]
    scores = fields["tokenizer.ggml.scores"]
    types = fields["tokenizer.ggml.token_type"]
    unknown_id = int(fields["tokenizer.ggml.unknown_token_id"].contents())

    proto = sp_model.ModelProto()
    for index in range(len(pieces.data)):
        piece = proto.pieces.add()
        piece.piece = bytes(pieces.parts[pieces.data[index]]).decode("utf-8")
        piece.score = float(scores.parts[scores.data[index]][0])
        piece.type = int(types.parts[types.data[index]][0])
    # The GGUF marks <unk> as a control token, but SentencePiece rejects a
    # model without exactly one unknown piece.
    proto.pieces[unknown_id].type = _UNKNOWN_PIECE

    trainer = proto.trainer_spec
    trainer.model_type = sp_model.TrainerSpec.BPE
    trainer.vocab_size = len(pieces.data)
    trainer.byte_fallback = True
    trainer.unk_id = unknown_id
    trainer.bos_id = int(fields["tokenizer.ggml.bos_token_id"].contents())
    trainer.eos_id = int(fields["tokenizer.ggml.eos_token_id"].contents())
    trainer.pad_id = int(fields["tokenizer.ggml.padding_token_id"].contents())

    normalizer = proto.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = False
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = True
    return proto.SerializeToString()


def open_gguf(path: Path):
    """Open a GGUF file read-only (memory-mapped)."""
    from gguf import GGUFReader

    logger.info("Reading %s", path)
    return GGUFReader(path, "r")

"""`StudentCode`: call the submission's functions from a test, as if in-process.

Arguments are encoded for the channel here. NumPy arrays travel as data,
`AsJax` wrappers become JAX arrays in the child and `Key` becomes a JAX PRNG
key there. Models and tokenizers become proxies: their calls come back here
and are recorded in `StudentCode.asks`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np

from autograder import channel, reference_ops
from autograder.sandbox import Callback, Sandbox


# Helpers that tests may run with the grader's versions (`use_reference`).
# The child's stand-ins send their calls here under this prefix.
REFERENCE_HELPERS = ("softmax", "top_k", "greedy_next_token", "sample_next_token", "top_p_filter")
REFERENCE_PREFIX = "reference."
MAX_REFERENCE_ELEMENTS = 16 * 262_144  # 16 rows of the Gemma 3 vocabulary

# Longer contexts are never needed by the lab and would let a submission hold
# the grader in long forward passes (8192 tokens take minutes on 2 cores).
MAX_CONTEXT_TOKENS = 1024
# Bounds the grader's time on one tokenizer request; lab texts are far shorter.
MAX_TEXT_CHARACTERS = 100_000


@dataclasses.dataclass(frozen=True)
class AsJax:
    """Send this array as a `jax.Array`."""

    array: np.ndarray


@dataclasses.dataclass(frozen=True)
class Key:
    """A JAX PRNG key made in the child: `jax.random.key(seed)` or `PRNGKey(seed)`."""

    seed: int
    typed: bool = True


def _tokenizer_info(tokenizer) -> dict:
    special = tokenizer.special_tokens
    return {
        "special_tokens": {name: int(getattr(special, name)) for name in ("BOS", "EOS", "PAD", "UNK")},
        "vocab_size": int(tokenizer.vocab_size),
    }


def _is_model(value: Any) -> bool:
    return hasattr(value, "next_token_logits") and hasattr(value, "tokenizer")


def _is_tokenizer(value: Any) -> bool:
    return hasattr(value, "encode") and hasattr(value, "decode") and hasattr(value, "special_tokens")


class StudentCode:
    """The functions of one submission, running in a `Sandbox`."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.asks: list[Callback] = []
        self._handles: dict[str, Any] = {}
        # Reference helpers the current call may use; requests for others
        # are rejected, so student code cannot use the grader's results.
        self._references: frozenset[str] = frozenset()

    def _encode_argument(self, value: Any) -> Any:
        if isinstance(value, AsJax):
            return {"$jax": channel.encode_array(np.asarray(value.array))["$array"]}
        if isinstance(value, Key):
            return {"$key": {"seed": int(value.seed), "kind": "typed" if value.typed else "raw"}}
        if _is_model(value):
            handle = f"model{len(self._handles)}"
            self._handles[handle] = value
            info = {
                "name": str(getattr(value, "name", "model")),
                "vocab_size": int(value.vocab_size),
                "tokenizer": _tokenizer_info(value.tokenizer),
            }
            return {"$model": {"handle": handle, "info": info}}
        if _is_tokenizer(value):
            handle = f"tokenizer{len(self._handles)}"
            self._handles[handle] = value
            return {"$tokenizer": {"handle": handle, "info": _tokenizer_info(value)}}
        return channel.encode_value(value)

    def _answer(self, method: str, args: list, kwargs: dict) -> Any:
        """Run a proxied model, tokenizer or reference method for the child."""
        if method.startswith(REFERENCE_PREFIX):
            name = method.removeprefix(REFERENCE_PREFIX)
            if name not in self._references:
                raise ValueError(f"the grader's {name}() is not available in this call")
            return run_reference(name, args, kwargs, self._vocabulary_sizes())
        if kwargs:
            raise TypeError(f"{method.rpartition('.')[2]}() takes no keyword arguments here")
        handle, _, name = method.rpartition(".")
        owner = handle.removesuffix(".tokenizer")
        target = self._handles.get(owner)
        if handle.endswith(".tokenizer"):
            # Only a model has a `.tokenizer`; any deeper path is invalid.
            target = target.tokenizer if _is_model(target) else None
        if target is None:
            raise ValueError(f"unknown object {handle!r}")

        result = self._run_method(target, name, args)
        # Only requests that ran are recorded: the suites check the contexts
        # that the student's code passed to the model.
        self.asks.append(Callback(name, tuple(args)))
        return result

    def _run_method(self, target: Any, name: str, args: list) -> Any:
        """Run one proxied model or tokenizer method on checked arguments."""
        if name == "next_token_logits" and _is_model(target):
            (token_ids,) = _arguments(name, args, 1)
            ids = _token_ids(token_ids)
            if len(ids) > MAX_CONTEXT_TOKENS:
                raise ValueError(f"the grader's model accepts at most {MAX_CONTEXT_TOKENS} tokens, got {len(ids)}")
            return np.asarray(target.next_token_logits(ids), dtype=np.float32)
        if name == "encode" and _is_tokenizer(target):
            text, add_bos, add_eos = _arguments(name, args, 3)
            if not isinstance(text, str):
                raise TypeError(f"encode() expects a str, got {type(text).__name__}")
            if len(text) > MAX_TEXT_CHARACTERS:
                raise ValueError(f"the grader's tokenizer accepts at most {MAX_TEXT_CHARACTERS} characters, got {len(text)}")
            return [int(i) for i in target.encode(text, add_bos=bool(add_bos), add_eos=bool(add_eos))]
        if name == "decode" and _is_tokenizer(target):
            (token_ids,) = _arguments(name, args, 1)
            ids = _token_ids(token_ids, allow_scalar=True)
            if isinstance(ids, list) and len(ids) > MAX_TEXT_CHARACTERS:
                raise ValueError(f"the grader's tokenizer decodes at most {MAX_TEXT_CHARACTERS} tokens, got {len(ids)}")
            return str(target.decode(ids))
        raise ValueError(f"unknown method {name!r}")

    def _vocabulary_sizes(self) -> set[int]:
        """Return the vocabulary sizes of the models and tokenizers passed to the current call."""
        return {int(value.vocab_size) for value in self._handles.values()}

    def call(
        self,
        function: str,
        *args: Any,
        use_reference: tuple[str, ...] = (),
        return_argument: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call `function(*args, **kwargs)` in the submission and return its result.

        `use_reference` names helper functions (e.g. `softmax`) that the call
        runs with the grader's versions instead of the student's. With
        `return_argument`, return that argument as it is after the call.
        """
        self.asks.clear()
        self._handles.clear()
        self._references = frozenset(use_reference)
        wire_args = [self._encode_argument(value) for value in args]
        wire_kwargs = {key: self._encode_argument(value) for key, value in kwargs.items()}
        return self.sandbox.call(function, wire_args, wire_kwargs, on_ask=self._answer,
                                 use_reference=use_reference, return_argument=return_argument)

    def call_with_keys(self, function: str, *args: Any, seeds: list[int], typed: bool = True, **kwargs: Any) -> list:
        """Call `function` once per seed, with a PRNG key in place of the `Key` in `args`."""
        index = next(i for i, value in enumerate(args) if isinstance(value, Key))
        self.asks.clear()
        self._handles.clear()
        self._references = frozenset()
        wire_args = [self._encode_argument(value) for value in args]
        wire_kwargs = {key: self._encode_argument(value) for key, value in kwargs.items()}
        repeat = {"index": index, "seeds": [int(seed) for seed in seeds], "kind": "typed" if typed else "raw"}
        return self.sandbox.call(function, wire_args, wire_kwargs, on_ask=self._answer, repeat_with_keys=repeat)

    def __getattr__(self, function: str):
        if function.startswith("_"):
            raise AttributeError(function)
        return lambda *args, **kwargs: self.call(function, *args, **kwargs)


def run_reference(name: str, args: list, kwargs: dict, vocabulary_sizes: set[int]) -> Any:
    """Run the grader's `name` on arguments sent by student code.

    Arrays may hold at most `MAX_REFERENCE_ELEMENTS` values. Logits given to
    `sample_next_token`, which JAX compiles once per shape, must be 1-D with
    the length of a vocabulary in `vocabulary_sizes`, so that student code
    cannot fill the grader's compilation cache with new shapes. Errors come
    back to the student's code as `TypeError` or `ValueError`, whatever the
    reference raised on its malformed arguments.
    """
    if name not in REFERENCE_HELPERS:
        raise ValueError(f"unknown helper {name!r}")
    for value in (*args, *kwargs.values()):
        if isinstance(value, np.ndarray) and value.size > MAX_REFERENCE_ELEMENTS:
            raise ValueError(f"{name}() accepts at most {MAX_REFERENCE_ELEMENTS} values here, got {value.size}")
    function = getattr(reference_ops, name)
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{name}(): {error}") from None
    if name == "sample_next_token":
        logits = np.asarray(bound.arguments["logits"])
        if logits.ndim != 1 or logits.shape[0] not in vocabulary_sizes:
            raise ValueError(
                f"sample_next_token() expects 1-D logits over the model's vocabulary "
                f"({', '.join(map(str, sorted(vocabulary_sizes))) or 'no model in this call'}), "
                f"got shape {logits.shape}"
            )

    args = [_as_jax_key(value) for value in bound.args]
    kwargs = {key: _as_jax_key(value) for key, value in bound.kwargs.items()}
    try:
        return function(*args, **kwargs)
    except (TypeError, ValueError):
        raise
    except Exception as error:  # trusted code failing on untrusted arguments
        raise ValueError(f"{name}() failed on these arguments: {type(error).__name__}: {error}") from None


def _as_jax_key(value: Any) -> Any:
    if not isinstance(value, channel.PRNGKeyData):
        return value
    import jax

    try:
        return jax.random.wrap_key_data(value.data)
    except Exception as error:  # malformed key data is the caller's error
        raise ValueError(f"invalid PRNG key data: {error}") from None


def _arguments(method: str, args: list, count: int) -> list:
    if len(args) != count:
        raise TypeError(f"{method}() takes {count} positional argument{'s' if count > 1 else ''} here, got {len(args)}")
    return args


def _token_ids(value: Any, allow_scalar: bool = False) -> list[int] | int:
    """Validate token ids sent by student code: ints, or an integer array."""
    if isinstance(value, int) and not isinstance(value, bool):
        if allow_scalar:
            return value
        raise TypeError("token_ids must be a sequence of ints, not a single int")
    array = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if array.dtype == object or array.ndim > 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"token ids must be integers in a list or 1-D array, got {describe_type(value)}")
    if array.ndim == 0:
        if allow_scalar:
            return int(array)
        raise TypeError("token_ids must be a sequence of ints, not a single int")
    return [int(i) for i in array]


def describe_type(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return type(value).__name__

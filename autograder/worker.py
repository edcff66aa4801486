"""The child process that imports a submission and runs its functions.

This module runs untrusted code: nothing it sends back is trusted. The
grader starts it with `python -m autograder.worker IN_FD OUT_FD`, sends one
`load` message with the submission's source, then `call` messages. During a
call, student code may use a model and a tokenizer. Those are proxies whose
methods send requests to the grader over the channel, so the real model and
its files stay in the grader's process.
"""

from __future__ import annotations

import builtins
import sys
import traceback
import types
from typing import Any

import numpy as np

from autograder import channel

STUDENT_MODULE = "lab3_transformer"
STUDENT_FILENAME = "<submission>"
_MAX_TRACEBACK_CHARS = 4000


class _Link:
    """The worker's end of the channel."""

    def __init__(self, in_fd: int, out_fd: int):
        self.in_fd = in_fd
        self.out_fd = out_fd

    def send(self, message: dict) -> None:
        channel.send(self.out_fd, message)

    def ask(self, method: str, args: tuple | list = (), kwargs: dict | None = None) -> Any:
        """Ask the grader to run a model, tokenizer or reference method and return its result."""
        message = {"op": "ask", "method": method, "args": [channel.encode_value(a) for a in args]}
        if kwargs:
            message["kwargs"] = {str(name): channel.encode_value(value) for name, value in kwargs.items()}
        self.send(message)
        reply = channel.receive(self.in_fd)
        if reply["op"] == "answer":
            return channel.decode_value(reply["value"])
        # The grader rejected the arguments: raise as the real object would.
        error_type = {"TypeError": TypeError}.get(reply.get("type"), ValueError)
        raise error_type(reply.get("message", "invalid arguments"))


class SpecialTokens:
    """Plain-int ids of the special tokens, like `gm.text.Gemma3Tokenizer.special_tokens`."""

    def __init__(self, ids: dict[str, int]):
        for name, token_id in ids.items():
            setattr(self, name, token_id)


class TokenizerProxy:
    """A tokenizer whose `encode` and `decode` run in the grader."""

    def __init__(self, link: _Link, handle: str, info: dict):
        self._link = link
        self._handle = handle
        self.special_tokens = SpecialTokens(info["special_tokens"])
        self.vocab_size = info["vocab_size"]

    def encode(self, text, add_bos=False, add_eos=False):
        return self._link.ask(f"{self._handle}.encode", (text, bool(add_bos), bool(add_eos)))

    def decode(self, ids):
        return self._link.ask(f"{self._handle}.decode", (_plain(ids),))

    def __repr__(self):
        return f"<Tokenizer, vocabulary of {self.vocab_size} tokens>"


class ModelProxy:
    """A `LanguageModel` whose `next_token_logits` runs in the grader."""

    def __init__(self, link: _Link, handle: str, info: dict):
        self._link = link
        self._handle = handle
        self.name = info["name"]
        self.vocab_size = info["vocab_size"]
        self.tokenizer = TokenizerProxy(link, f"{handle}.tokenizer", info["tokenizer"])

    def next_token_logits(self, token_ids):
        return self._link.ask(f"{self._handle}.next_token_logits", (_plain(token_ids),))

    def __repr__(self):
        return f"<LanguageModel {self.name}>"


def _plain(value: Any) -> Any:
    """Turn token ids (list, tuple, NumPy or JAX array) into sendable data."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return np.asarray(value)


def _make_key(spec: dict):
    import jax

    if spec["kind"] == "typed":
        return jax.random.key(spec["seed"])
    return jax.random.PRNGKey(spec["seed"])


def _build_argument(link: _Link, wire: Any) -> Any:
    """Turn an argument from the grader into what the student function gets."""
    if isinstance(wire, dict) and len(wire) == 1:
        (tag, payload), = wire.items()
        if tag == "$key":
            return _make_key(payload)
        if tag == "$jax":
            import jax.numpy as jnp

            return jnp.asarray(channel.decode_array(payload))
        if tag == "$model":
            return ModelProxy(link, payload["handle"], payload["info"])
        if tag == "$tokenizer":
            return TokenizerProxy(link, payload["handle"], payload["info"])
    return channel.decode_value(wire)


def _result_to_wire(value: Any, depth: int = 0) -> Any:
    """Encode a student function's return value: arrays, numbers, figures."""
    if depth > channel.MAX_DEPTH:
        raise channel.ChannelError("the returned value is nested too deeply")
    if value is None or type(value) in (bool, int, float, str):
        return value
    module = type(value).__module__ or ""
    if module.startswith("plotly") and hasattr(value, "to_plotly_json"):
        import plotly.io

        return {"$figure": plotly.io.to_json(value, validate=False)}
    if isinstance(value, (list, tuple)):
        # A flat list of numbers is an array-like: send it as one array, so
        # that a softmax returning 262144 floats in a list stays one message.
        if value and all(type(item) in (int, float, bool) or isinstance(item, np.generic) for item in value):
            return channel.encode_array(np.asarray(value))
        tag = "$list" if isinstance(value, list) else "$tuple"
        return {tag: [_result_to_wire(item, depth + 1) for item in value]}
    if isinstance(value, (int, float)):  # subclasses, e.g. IntEnum or np.float64
        return channel.encode_array(np.asarray(value))
    array = np.asarray(value)
    if array.dtype == object:
        raise channel.ChannelError(
            f"it is a {type(value).__name__}, not a number, array, string or figure"
        )
    return channel.encode_array(array)


def _student_traceback(error: BaseException) -> str:
    """Format an exception, keeping only frames from the submission."""
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == STUDENT_FILENAME
    ]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(error), error)
    text = "".join(lines)
    return text[-_MAX_TRACEBACK_CHARS:]


def _error_message(error: BaseException) -> dict:
    return {
        "op": "raised",
        "type": type(error).__name__,
        "message": str(error)[:_MAX_TRACEBACK_CHARS],
        "traceback": _student_traceback(error),
    }


def _silence_displays() -> None:
    """Make display calls no-ops: a grader has no screen or browser."""
    builtins.display = lambda *args, **kwargs: None
    try:
        import plotly.basedatatypes

        plotly.basedatatypes.BaseFigure.show = lambda self, *args, **kwargs: None
    except ImportError:
        pass
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        pass


def _load(source: str) -> types.ModuleType:
    module = types.ModuleType(STUDENT_MODULE)
    module.__file__ = STUDENT_FILENAME
    sys.modules[STUDENT_MODULE] = module
    exec(compile(source, STUDENT_FILENAME, "exec"), module.__dict__)
    return module


def _call(link: _Link, module: types.ModuleType, message: dict) -> dict:
    function = getattr(module, message["function"], None)
    if not callable(function):
        return {"op": "missing", "function": message["function"]}
    # Tests of one exercise may run on the grader's versions of the helper
    # functions, so that a mistake in a helper costs only the helper's points.
    saved = {}
    for name in message.get("use_reference", []):
        saved[name] = module.__dict__.get(name)
        module.__dict__[name] = _reference_function(link, name)
    try:
        args = [_build_argument(link, wire) for wire in message["args"]]
        kwargs = {key: _build_argument(link, wire) for key, wire in message["kwargs"].items()}
        repeat = message.get("repeat_with_keys")
        if not repeat:
            value = function(*args, **kwargs)
            if message.get("return_argument") is not None:
                value = args[message["return_argument"]]  # to see whether the call changed it
            return {"op": "returned", "value": _result_to_wire(value)}
        # One call per key, with the key as argument `index`: thousands of
        # draws for a statistical test without one message per draw.
        values = []
        for seed in repeat["seeds"]:
            args[repeat["index"]] = _make_key({"seed": seed, "kind": repeat["kind"]})
            values.append(_result_to_wire(function(*args, **kwargs)))
        return {"op": "returned", "value": {"$list": values}}
    except channel.ChannelError as error:
        return {"op": "invalid", "message": str(error)}
    except BaseException as error:  # student code may raise anything, SystemExit included
        return _error_message(error)
    finally:
        for name, original in saved.items():
            module.__dict__[name] = original


def _reference_function(link: _Link, name: str):
    """Return a stand-in for the grader's `name` that runs in the grader.

    The grader's implementations never enter this process, where student
    code could read them.
    """

    def reference(*args, **kwargs):
        try:
            return link.ask(f"reference.{name}", [_helper_value(a) for a in args],
                            {key: _helper_value(value) for key, value in kwargs.items()})
        except channel.ChannelError as error:
            raise TypeError(f"{name}() cannot take this argument: {error}") from None

    reference.__name__ = reference.__qualname__ = name
    return reference


def _helper_value(value: Any) -> Any:
    """Turn a helper argument (JAX arrays and keys included) into sendable data."""
    if isinstance(value, (list, tuple)):
        return type(value)(_helper_value(item) for item in value)
    if (type(value).__module__ or "").startswith("jax"):
        import jax

        dtype = getattr(value, "dtype", None)
        if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            return channel.PRNGKeyData(np.asarray(jax.random.key_data(value)))
        return np.asarray(value)
    return value


def serve(in_fd: int, out_fd: int) -> None:
    link = _Link(in_fd, out_fd)
    _silence_displays()

    message = channel.receive(in_fd)
    try:
        module = _load(message["source"])
    except BaseException as error:  # SyntaxError, SystemExit, anything at import
        link.send(_error_message(error))
        return
    functions = sorted(name for name, value in vars(module).items() if callable(value))
    link.send({"op": "loaded", "functions": functions})

    while True:
        try:
            message = channel.receive(in_fd)
        except EOFError:
            return
        if message["op"] == "call":
            link.send(_call(link, module, message))


def main() -> None:
    in_fd, out_fd = int(sys.argv[1]), int(sys.argv[2])
    serve(in_fd, out_fd)


if __name__ == "__main__":
    main()

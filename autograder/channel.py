"""The wire format between the grader and the process running student code.

A message is a JSON object followed by the raw bytes of the arrays it
carries. Its frame is two 4-byte big-endian lengths (the JSON's, then the
raw bytes'), the JSON, then the raw bytes, which the JSON points into with
`{"$bytes": [offset, size]}`. Sending arrays as raw bytes instead of base64
text keeps a 1 MB logits vector at one copy on each side, and the grader
sends hundreds of them per grading.

Values are plain data only: JSON scalars and strings, lists, tuples,
string-keyed dicts, NumPy arrays (dtype, shape and bytes), the data of JAX PRNG
keys, and plotly figures as their JSON. `decode_value` rebuilds them in the
trusted process from built-in types and fresh `numpy.ndarray`s, so no object
made by student code (an array subclass, a custom `__eq__`) ever reaches a
comparison.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import select
import struct
import time
from typing import Any

import numpy as np

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 8
MAX_ITEMS = 100_000
MAX_MESSAGE_ITEMS = 1_000_000  # commas and brackets in one message
MAX_DIMENSIONS = 32  # NumPy allows 64
MAX_ITEMS_PER_ARRAY = MAX_MESSAGE_BYTES  # along any one dimension

# Array dtypes that may cross the channel, by name. bfloat16 comes from
# ml_dtypes, which JAX installs.
_ALLOWED_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "bfloat16",
}

_HEADER = struct.Struct(">II")  # JSON size, raw bytes size


class ChannelError(Exception):
    """A message or value that breaks the wire format."""


def _dtype(name: Any) -> np.dtype:
    if type(name) is not str or name not in _ALLOWED_DTYPES:
        raise ChannelError(f"unsupported array dtype {name!r}")
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def encode_array(array: np.ndarray) -> dict:
    """Encode an array; its `data` is bytes, which `send` moves out of the JSON."""
    array = np.asarray(array)
    # tobytes() writes C order for any layout; np.ascontiguousarray would
    # turn a 0-D array (np.argmax's result) into shape (1,).
    return {
        "$array": {
            "dtype": array.dtype.name,
            "shape": list(array.shape),
            "data": array.tobytes(order="C"),
        }
    }


def decode_array(payload: Any) -> np.ndarray:
    """Rebuild an array from its raw bytes (as `receive` gives them) or base64 text."""
    if not isinstance(payload, dict) or set(payload) != {"dtype", "shape", "data"}:
        raise ChannelError("malformed array")
    dtype = _dtype(payload["dtype"])
    shape = payload["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_DIMENSIONS or not all(
            type(n) is int and 0 <= n <= MAX_ITEMS_PER_ARRAY for n in shape):
        raise ChannelError("malformed array shape")
    raw = payload["data"]
    if type(raw) is str:
        try:
            raw = base64.b64decode(raw, validate=True)
        except ValueError:
            raise ChannelError("malformed array data") from None
    elif type(raw) is not bytes:
        raise ChannelError("malformed array data")
    # Python integers: np.prod would overflow on a forged shape.
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise ChannelError("array data does not match its shape")
    try:
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    except ValueError as error:  # a shape NumPy cannot represent
        raise ChannelError(f"malformed array shape: {error}") from None


def encode_value(value: Any, depth: int = 0) -> Any:
    """Encode a value for the wire (used on both sides of the channel)."""
    if depth > MAX_DEPTH:
        raise ChannelError("value is nested too deeply")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if isinstance(value, PRNGKeyData):
        return {"$key_data": encode_array(value.data)["$array"]}
    if isinstance(value, np.generic):
        return encode_array(np.asarray(value))
    if type(value) in (list, tuple):
        tag = "$list" if type(value) is list else "$tuple"
        return {tag: [encode_value(item, depth + 1) for item in value]}
    if type(value) is dict and all(type(key) is str for key in value):
        return {"$dict": {key: encode_value(item, depth + 1) for key, item in value.items()}}
    raise ChannelError(f"cannot send a value of type {type(value).__name__}")


def decode_value(wire: Any, depth: int = 0) -> Any:
    """Rebuild a value from its wire form, accepting only known shapes."""
    if depth > MAX_DEPTH:
        raise ChannelError("value is nested too deeply")
    if type(wire) is str:
        return clean_text(wire)
    if wire is None or type(wire) in (bool, int, float):
        return wire
    if type(wire) is not dict or len(wire) != 1:
        raise ChannelError("malformed value")
    (tag, payload), = wire.items()
    if tag == "$array":
        return decode_array(payload)
    if tag in ("$list", "$tuple"):
        if type(payload) is not list or len(payload) > MAX_ITEMS:
            raise ChannelError("malformed or oversized sequence")
        items = [decode_value(item, depth + 1) for item in payload]
        return items if tag == "$list" else tuple(items)
    if tag == "$dict":
        if type(payload) is not dict or len(payload) > MAX_ITEMS:
            raise ChannelError("malformed or oversized dict")
        return {str(key): decode_value(item, depth + 1) for key, item in payload.items()}
    if tag == "$key_data":
        return PRNGKeyData(decode_array(payload))
    if tag == "$figure":
        if type(payload) is not str:
            raise ChannelError("malformed figure")
        return FigureJSON(payload)
    raise ChannelError(f"unknown value tag {tag!r}")


def clean_text(text: str) -> str:
    """Replace lone surrogates, which JSON allows but UTF-8 cannot encode, with U+FFFD."""
    if text.isascii():
        return text
    return text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")


class FigureJSON(str):
    """A plotly figure serialised by `plotly.io.to_json`, not yet parsed."""


@dataclasses.dataclass(frozen=True)
class PRNGKeyData:
    """The data of a typed JAX PRNG key (`jax.random.key_data`), sent without JAX objects."""

    data: np.ndarray


class ChannelTimeout(ChannelError):
    """The other side did not read or write in time."""


def _wait(fd: int, writing: bool, deadline: float | None) -> None:
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    readable, writable, _ = select.select([] if writing else [fd], [fd] if writing else [], [], max(remaining, 0))
    if not (readable or writable):
        raise ChannelTimeout("the other side stopped " + ("reading" if writing else "writing"))


def send(fd: int, message: dict, deadline: float | None = None) -> None:
    """Send one message; with a `deadline` (time.monotonic()), give up when it passes."""
    buffers: list[bytes] = []
    offset = 0

    def out_of_band(value: Any) -> dict:
        nonlocal offset
        if type(value) is not bytes:
            raise TypeError(f"cannot send a value of type {type(value).__name__}")
        buffers.append(value)
        offset += len(value)
        return {"$bytes": [offset - len(value), len(value)]}

    try:
        text = json.dumps(message, allow_nan=True, default=out_of_band).encode("utf-8")
    except TypeError as error:
        raise ChannelError(str(error)) from None
    if len(text) + offset > MAX_MESSAGE_BYTES:
        raise ChannelError(f"message of {len(text) + offset} bytes exceeds {MAX_MESSAGE_BYTES} bytes")
    _write_all(fd, b"".join([_HEADER.pack(len(text), offset), text, *buffers]), deadline)


def _write_all(fd: int, data: bytes, deadline: float | None) -> None:
    view = memoryview(data)
    if deadline is None:
        while view:
            view = view[os.write(fd, view):]
        return

    # A non-blocking write fills the pipe only as far as it has room. When the
    # pipe is full, select() waits for room until the deadline, and a reader
    # that stopped makes the send raise ChannelTimeout.
    os.set_blocking(fd, False)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            _wait(fd, writing=True, deadline=deadline)


def read_exactly(fd: int, size: int, deadline: float | None = None) -> bytes:
    chunks = []
    while size:
        _wait(fd, writing=False, deadline=deadline)
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, deadline: float | None = None) -> dict:
    """Receive one message; with a `deadline` (time.monotonic()), give up when it passes."""
    text_size, raw_size = _HEADER.unpack(read_exactly(fd, _HEADER.size, deadline))
    if text_size + raw_size > MAX_MESSAGE_BYTES:
        raise ChannelError(f"message of {text_size + raw_size} bytes exceeds {MAX_MESSAGE_BYTES} bytes")
    text = read_exactly(fd, text_size, deadline)
    raw = read_exactly(fd, raw_size, deadline)
    # json.loads builds one Python object per item, about 25 times the
    # message's size for tiny items, so count them before parsing. Array
    # data travels outside the JSON and contains none of these items.
    items = text.count(b",") + text.count(b"{") + text.count(b"[")
    if items > MAX_MESSAGE_ITEMS:
        raise ChannelError(f"message of {items} items exceeds {MAX_MESSAGE_ITEMS} items")

    # Spans may not add up to more than the raw bytes, so that references to
    # the same bytes cannot make the decoded message larger than the sent one.
    referenced = 0

    def in_band(fields: dict) -> Any:
        nonlocal referenced
        if len(fields) != 1 or "$bytes" not in fields:
            return fields
        span = fields["$bytes"]
        if not (type(span) is list and len(span) == 2 and all(type(n) is int and n >= 0 for n in span)
                and span[0] + span[1] <= raw_size):
            raise ChannelError("malformed reference to raw bytes")
        referenced += span[1]
        if referenced > raw_size:
            raise ChannelError("references to raw bytes overlap")
        return raw[span[0]:span[0] + span[1]]

    try:
        message = json.loads(text, object_hook=in_band)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ChannelError(f"message is not valid JSON: {type(error).__name__}") from None
    if type(message) is not dict or type(message.get("op")) is not str:
        raise ChannelError("message has no 'op'")
    return message

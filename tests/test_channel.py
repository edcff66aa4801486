"""The wire format between grader and student process."""

import os
import threading
import time

import ml_dtypes
import numpy as np
import pytest

from autograder import channel


@pytest.mark.parametrize("value", [
    None, True, 3, 2.5, "text", [1, "a"], (1, 2.0), {"k": [1]},
    np.arange(6, dtype=np.int32).reshape(2, 3), np.float64(1.5), np.ones(3, dtype=ml_dtypes.bfloat16),
])
def test_roundtrip(value):
    decoded = channel.decode_value(channel.encode_value(value))
    if isinstance(value, (np.ndarray, np.generic)):
        assert type(decoded) is np.ndarray
        assert decoded.dtype == np.asarray(value).dtype
        np.testing.assert_array_equal(decoded, value)
    else:
        assert decoded == value
        assert type(decoded) is type(value)


@pytest.mark.parametrize("wire", [
    {"$array": {"dtype": "object", "shape": [1], "data": ""}},
    {"$array": {"dtype": "float32", "shape": [4], "data": "AAAA"}},
    {"$array": {"dtype": "float32", "shape": [-1], "data": ""}},
    {"$array": {"dtype": ["float32"], "shape": [1], "data": "AAAAAA=="}},
    {"$array": {"dtype": "int8", "shape": [1] * 65, "data": "AA=="}},
    {"$array": {"dtype": "int8", "shape": [2**64, 0], "data": ""}},
    {"$eval": "__import__('os')"},
    {"$list": [1], "$tuple": [2]},
    [1, 2],
])
def test_malformed_values_rejected(wire):
    with pytest.raises(channel.ChannelError):
        channel.decode_value(wire)


def test_array_subclass_becomes_plain_array():
    class Sneaky(np.ndarray):
        def __eq__(self, other):
            return True

    sneaky = np.zeros(3).view(Sneaky)
    decoded = channel.decode_value(channel.encode_value(sneaky))
    assert type(decoded) is np.ndarray
    assert not np.array_equal(decoded, np.ones(3))


def test_framed_messages_over_a_pipe():
    read_fd, write_fd = os.pipe()
    try:
        channel.send(write_fd, {"op": "call", "args": [channel.encode_value(np.arange(3))]})
        message = channel.receive(read_fd)
        assert message["op"] == "call"
        np.testing.assert_array_equal(channel.decode_value(message["args"][0]), np.arange(3))
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.fixture
def pipe():
    """A pipe's (read end, write end), closed after the test."""
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    os.close(read_fd)
    os.close(write_fd)


def _frame(text: bytes, raw: bytes) -> bytes:
    return channel._HEADER.pack(len(text), len(raw)) + text + raw


def test_arrays_travel_as_raw_bytes(pipe):
    read_fd, write_fd = pipe
    values = np.arange(4.0)
    channel.send(write_fd, {"op": "answer", "value": channel.encode_value(values)})
    frame = os.read(read_fd, 1 << 16)

    text_size, raw_size = channel._HEADER.unpack(frame[:channel._HEADER.size])
    assert raw_size == values.nbytes
    assert len(frame) == channel._HEADER.size + text_size + raw_size
    assert frame.endswith(values.tobytes())


def test_large_array_through_a_pipe_with_a_deadline(pipe):
    """A 1 MB logits vector outgrows the pipe: the sender waits for room, the receiver reads it whole."""
    read_fd, write_fd = pipe
    logits = np.linspace(-5, 5, 262144).astype(np.float32)
    sender = threading.Thread(target=channel.send, args=(
        write_fd, {"op": "answer", "value": channel.encode_value(logits)}, time.monotonic() + 30))
    sender.start()
    message = channel.receive(read_fd, time.monotonic() + 30)
    sender.join()
    np.testing.assert_array_equal(channel.decode_value(message["value"]), logits)


def test_sender_gives_up_when_nobody_reads(pipe):
    _, write_fd = pipe
    with pytest.raises(channel.ChannelTimeout):
        channel.send(write_fd, {"value": channel.encode_value(np.zeros(262144, np.float32))},
                     time.monotonic() + 0.5)


def test_base64_array_data_still_decodes():
    wire = {"$array": {"dtype": "int32", "shape": [2], "data": "AQAAAAIAAAA="}}
    np.testing.assert_array_equal(channel.decode_value(wire), [1, 2])


@pytest.mark.parametrize("text, raw", [
    (b'{"op": "x", "value": {"$bytes": [0, 9]}}', b"12345678"),   # past the end
    (b'{"op": "x", "value": {"$bytes": [-1, 2]}}', b"12345678"),  # negative offset
    (b'{"op": "x", "value": {"$bytes": "0"}}', b""),              # not a span
    (b'{"op": "x", "value": [{"$bytes": [0, 8]}, {"$bytes": [0, 8]}]}', b"12345678"),  # the same bytes twice
])
def test_forged_byte_references_rejected(pipe, text, raw):
    read_fd, write_fd = pipe
    os.write(write_fd, _frame(text, raw))
    with pytest.raises(channel.ChannelError):
        channel.receive(read_fd)


def test_raw_bytes_alone_rejected(pipe):
    read_fd, write_fd = pipe
    os.write(write_fd, _frame(b'{"op": "returned", "value": {"$bytes": [0, 4]}}', b"abcd"))
    message = channel.receive(read_fd)
    with pytest.raises(channel.ChannelError):
        channel.decode_value(message["value"])


def test_prng_key_data_roundtrip():
    key_data = np.array([0, 42], dtype=np.uint32)
    decoded = channel.decode_value(channel.encode_value(channel.PRNGKeyData(key_data)))
    assert type(decoded) is channel.PRNGKeyData
    np.testing.assert_array_equal(decoded.data, key_data)


def test_reference_helpers_take_typed_keys():
    import jax

    from autograder import reference_ops
    from autograder.student import run_reference

    key = jax.random.key(7)
    logits = np.linspace(-3, 3, 50).astype(np.float32)
    sent = channel.decode_value(channel.encode_value(channel.PRNGKeyData(np.asarray(jax.random.key_data(key)))))

    token = run_reference("sample_next_token", [logits, sent], {"temperature": 0.5}, {50})

    assert token == reference_ops.sample_next_token(logits, key, temperature=0.5)
    with pytest.raises(ValueError, match="unknown helper"):
        run_reference("generate", [], {}, {50})
    with pytest.raises(ValueError, match="invalid PRNG key data"):
        run_reference("sample_next_token", [logits, channel.PRNGKeyData(np.zeros(5, np.float32))], {}, {50})


def test_reference_sampling_rejects_new_shapes():
    from autograder.student import run_reference

    key = channel.PRNGKeyData(np.array([0, 1], dtype=np.uint32))
    with pytest.raises(ValueError, match="1-D logits over the model's vocabulary"):
        run_reference("sample_next_token", [np.zeros(51, np.float32), key], {}, {50})
    with pytest.raises(ValueError, match="1-D logits over the model's vocabulary"):
        run_reference("sample_next_token", [], {"logits": np.zeros((2, 50), np.float32), "rng": key}, {50})
    with pytest.raises(ValueError, match="at most"):
        run_reference("softmax", [np.zeros(17 * 262_144, np.float32)], {}, set())

"""Hostile and broken submissions, one per threat to the grader.

Each case is the reference solution or the stub file with code added at the
end. Code that must run at import sits in a class body, because the grader
runs only definitions at the top level and a class body executes when it is
defined. A later `def` replaces the reference's function of the same name.

Paths the attacks aim at are filled in by the tests: `@SOLUTION@`,
`@REPO@`, `@CACHE@`, `@SENTINEL@` (a file the child must not be able to
create), `@PORT@` and `@SOCKET@` (listeners the test starts).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Hostile:
    """One hostile submission.

    Attributes:
      name: short identifier, used as the test id.
      base: "solution" or "stub", the file the code is appended to.
      code: Python source appended to the base.
      honest_points: what the submission's honest functions earn, by
        exercise; exercises not named earn their full points (base
        "solution") or nothing (base "stub").
    """

    name: str
    base: str
    code: str
    honest_points: dict[str, float] = dataclasses.field(default_factory=dict)


FAKE_RESULTS = Hostile("fake_results_files", "stub", r'''
class _ForgeResults:
    import json, os
    forged = json.dumps({"score": 100, "max_score": 100, "tests": []})
    for _path in ("@SENTINEL@", "results.json", "/autograder/results/results.json", "@REPO@/results.json"):
        try:
            os.makedirs(os.path.dirname(_path) or ".", exist_ok=True)
            with open(_path, "w") as _file:
                _file.write(forged)
        except OSError:
            pass
''')

FAKE_SCORE_LINES = Hostile("fake_score_lines", "stub", r'''
class _SpoofScore:
    import sys
    print("Score: 100 / 100")
    print("PASS  softmax: Matches softmax of the real next-token logits   4 / 4")
    print('{"score": 100, "max_score": 100}')
    print("\x1b[2K\rScore: 100 / 100", file=sys.stderr)


def softmax(logits):
    print("\nScore: 100 / 100\n")
    raise NotImplementedError
''')

PATCHED_NUMPY = Hostile("patched_numpy", "stub", r'''
class _PatchNumpy:
    import numpy
    numpy.allclose = lambda *args, **kwargs: True
    numpy.array_equal = lambda *args, **kwargs: True
    numpy.isclose = lambda a, b, *args, **kwargs: numpy.ones(numpy.shape(a), dtype=bool)
    numpy.testing.assert_allclose = lambda *args, **kwargs: None
    try:
        numpy.ndarray.__eq__ = lambda self, other: True
    except TypeError:  # built-in types reject new attributes
        pass


def softmax(logits):
    import numpy
    return numpy.zeros(numpy.shape(logits))


def top_k(probs, k):
    import numpy
    return numpy.zeros(k, dtype=int), numpy.zeros(k)


def greedy_next_token(logits):
    return 0
''', honest_points={"softmax": 3, "top_k": 0, "greedy_next_token": 0})

PATCHED_PYTEST = Hostile("patched_pytest", "stub", r'''
class _PatchPytest:
    import sys, types
    try:
        import pytest, _pytest.runner, _pytest.python, _pytest.outcomes
        pytest.approx = lambda *args, **kwargs: True
        _pytest.python.Function.runtest = lambda self: None
        _pytest.runner.pytest_runtest_call = lambda item: None
        _pytest.outcomes.fail = lambda *args, **kwargs: None
    except ImportError:
        pass
    sys.modules["pytest"] = types.SimpleNamespace(approx=lambda *args, **kwargs: True)
    for _path in ("@REPO@/autograder/suites/conftest.py", "@REPO@/autograder/plugin.py",
                  "@REPO@/autograder/suites/test_softmax.py"):
        try:
            with open(_path, "a") as _file:
                _file.write("\nimport pytest\npytest.skip(allow_module_level=True)\n")
        except OSError:
            pass
''')

PATCHED_LM_SUPPORT = Hostile("patched_lm_support", "solution", r'''
class _PatchLmSupport:
    import os
    import lm_support
    lm_support.load_model = lambda *args, **kwargs: None
    lm_support.DEFAULT_MODEL = "patched"
    for _path in ("@REPO@/lm_support/model.py", "@REPO@/lm_support/__init__.py"):
        try:
            with open(_path, "a") as _file:
                _file.write("\nraise SystemExit('patched')\n")
        except OSError:
            pass
    for _root, _folders, _files in os.walk("@CACHE@"):
        for _name in _files:
            try:
                with open(os.path.join(_root, _name), "r+b") as _file:
                    _file.write(b"\0" * 64)
            except OSError:
                pass
''')

ALWAYS_EQUAL = Hostile("always_equal", "solution", r'''
class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__


class EqualArray(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(other), dtype=bool)

    def __ne__(self, other):
        return np.zeros(np.shape(other), dtype=bool)


class EqualInt(int):
    def __eq__(self, other):
        return True


def softmax(logits):
    return AlwaysEqual()


def top_k(probs, k):
    return np.zeros(k, dtype=int).view(EqualArray), np.zeros(k).view(EqualArray)


def greedy_next_token(logits):
    return EqualInt(0)
''', honest_points={"softmax": 2, "top_k": 0, "greedy_next_token": 0})

EXIT_AT_IMPORT = Hostile("sys_exit_at_import", "solution", r'''
class _Leave:
    import sys
    sys.exit(0)
''', honest_points={exercise: 0 for exercise in (
    "softmax", "top_k", "greedy_next_token", "sample_next_token", "top_p_filter", "generate", "plot_next_token")})

OS_EXIT_IN_CALL = Hostile("os_exit_in_call", "solution", r'''
def softmax(logits):
    import os
    os._exit(0)
''', honest_points={"softmax": 0})

INFINITE_LOOP = Hostile("infinite_loop", "solution", r'''
def top_k(probs, k):
    while True:
        pass
''', honest_points={"top_k": 0})

MEMORY_BOMB = Hostile("memory_bomb", "solution", r'''
def softmax(logits):
    # Both requests exceed the 8 GiB address-space limit at once, so the
    # check costs no real memory.
    try:
        hoard = bytearray(64 * 1024**3)
    except MemoryError:
        pass
    return np.ones((10**6, 10**6))
''', honest_points={"softmax": 0})

PROCESS_BURST = Hostile("process_burst", "solution", r'''
class _Burst:
    import os, time
    started = 0
    for _ in range(20):
        try:
            _pid = os.fork()
        except OSError:
            break
        if _pid == 0:
            time.sleep(3600)
            os._exit(0)
        started += 1
''')

LOOPBACK_SOCKET = Hostile("loopback_socket", "solution", r'''
class _Connect:
    import socket
    for _family, _address in ((socket.AF_INET, ("127.0.0.1", @PORT@)), (socket.AF_UNIX, "@SOCKET@")):
        try:
            with socket.socket(_family, socket.SOCK_STREAM) as _connection:
                _connection.settimeout(2)
                _connection.connect(_address)
                _connection.sendall(b"pwned")
        except OSError:
            pass
''')

READ_SOLUTIONS = Hostile("read_solutions", "stub", r'''
class _Steal:
    # Whatever it can read replaces the stub's functions.
    for _path in ("@SOLUTION@", "@REPO@/autograder/reference_ops.py", "@REPO@/autograder/suites/test_softmax.py"):
        try:
            with open(_path) as _file:
                exec(_file.read(), globals())
        except Exception:
            pass
    try:
        from autograder import reference_ops as _reference
        globals().update(softmax=_reference.softmax, top_k=_reference.top_k)
    except ImportError:
        pass
''')

HEAVY_OUTPUT = Hostile("heavy_output", "solution", r'''
class _Flood:
    import sys
    sys.stdout.write("x" * 5_000_000 + "\n")
    sys.stderr.write("y" * 5_000_000 + "\n")


_quiet_softmax = softmax


def softmax(logits):
    import sys
    sys.stdout.write("chatty softmax " * 50_000 + "\n")
    sys.stderr.write("noisy softmax " * 50_000 + "\n")
    return _quiet_softmax(logits)
''')

IN_PLACE_SOFTMAX = Hostile("in_place_softmax", "solution", r'''
def softmax(logits):
    if isinstance(logits, np.ndarray) and logits.dtype in (np.float32, np.float64):
        logits -= logits.max(axis=-1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=-1, keepdims=True)
        return logits
    values = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
''', honest_points={"softmax": 13})

KILL_PARENT = Hostile("kill_parent", "solution", r'''
class _Kill:
    import os, signal, subprocess
    for _pid in (os.getppid(), 1, -1):
        try:
            os.kill(_pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        subprocess.run(["umount", "/proc"], capture_output=True)
    except OSError:
        pass
''')

REFERENCE_ORACLE = Hostile("reference_oracle", "stub", r'''
class _Oracle:
    # The worker's stand-ins for the grader's helpers, outside any call that allows them.
    import sys
    from autograder import worker
    link = worker._Link(int(sys.argv[1]), int(sys.argv[2]))
    for name in ("softmax", "top_k", "greedy_next_token", "sample_next_token", "top_p_filter"):
        globals()[name] = worker._reference_function(link, name)
''', honest_points={"top_k": 2, "sample_next_token": 2, "top_p_filter": 2})  # as functions that raise ValueError

LONE_SURROGATE = Hostile("lone_surrogate", "solution", r'''
def greedy_next_token(logits):
    raise ValueError("\ud800 \udfff")
''', honest_points={"greedy_next_token": 0})

_RAW_REPLY = r'''
def _send_raw(body, raw=b""):
    import os, struct, sys
    data = struct.pack(">II", len(body), len(raw)) + body + raw
    while data:
        data = data[os.write(int(sys.argv[2]), data):]
    os._exit(0)
'''

CHANNEL_FLOOD = Hostile("channel_flood", "solution", _RAW_REPLY + r'''

def softmax(logits):
    _send_raw(b'{"op": "returned", "value": [' + b"{}," * (16 * 2**20 // 3) + b"{}]}")
''', honest_points={"softmax": 0})

FORGED_ARRAY_SHAPE = Hostile("forged_array_shape", "solution", _RAW_REPLY + r'''

def softmax(logits):
    _send_raw(b'{"op": "returned", "value": {"$array": {"dtype": "int8", "shape": [1000000000000000000000000000000], "data": ""}}}')
''', honest_points={"softmax": 0})

FORGED_BYTES_REFERENCE = Hostile("forged_bytes_reference", "solution", _RAW_REPLY + r'''

def softmax(logits):
    # Points past the raw bytes that follow the JSON.
    _send_raw(b'{"op": "returned", "value": {"$array": {"dtype": "float32", "shape": [262144], '
              b'"data": {"$bytes": [0, 1048576]}}}}', raw=b"\\0" * 16)
''', honest_points={"softmax": 0})

BAD_PROXY_REQUESTS = Hostile("bad_proxy_requests", "solution", r'''

class _Honest:
    generate = generate
    plot_next_token = plot_next_token


def generate(model, prompt, max_new_tokens=10, do_sample=True, rng=None, temperature=1.0):
    # Malformed model requests, each caught: they must not count as model calls.
    for args in ((), (5,), ([2], [3])):
        try:
            model._link.ask(model._handle + ".next_token_logits", args)
        except Exception:
            pass
    return _Honest.generate(model, prompt, max_new_tokens, do_sample, rng, temperature)


def plot_next_token(probs_or_logits, tokenizer, prompt, keep_top=30):
    # A tokenizer has no `.tokenizer`; the grader must reject the path, not fail.
    try:
        tokenizer._link.ask(tokenizer._handle + ".tokenizer.decode", ([1],))
    except Exception:
        pass
    return _Honest.plot_next_token(probs_or_logits, tokenizer, prompt, keep_top)
''')

DEEP_FIGURE = Hostile("deep_figure", "solution", _RAW_REPLY + r'''

def plot_next_token(probs_or_logits, tokenizer, prompt, keep_top=30):
    _send_raw(b'{"op": "returned", "value": {"$figure": "' + b"[" * 200_000 + b'"}}')
''', honest_points={"plot_next_token": 0})

ALL_CASES = (
    FAKE_RESULTS, FAKE_SCORE_LINES, PATCHED_NUMPY, PATCHED_PYTEST, PATCHED_LM_SUPPORT, ALWAYS_EQUAL,
    EXIT_AT_IMPORT, OS_EXIT_IN_CALL, INFINITE_LOOP, MEMORY_BOMB, PROCESS_BURST, LOOPBACK_SOCKET,
    READ_SOLUTIONS, HEAVY_OUTPUT, IN_PLACE_SOFTMAX, KILL_PARENT, REFERENCE_ORACLE, LONE_SURROGATE,
    CHANNEL_FLOOD, FORGED_ARRAY_SHAPE, FORGED_BYTES_REFERENCE, BAD_PROXY_REQUESTS, DEEP_FIGURE,
)

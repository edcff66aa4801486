"""Keep TensorFlow, absl and XLA start-up chatter off stderr.

nbgrader gives 0 points to a test cell that writes to stderr, and students
should see the kit's messages rather than backend logs. This module must be
imported before `jax`, `tensorflow` or `gemma`, because the C++ loggers read
these variables once, when their libraries load.
"""

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

# setdefault lets a user who wants the logs back export the variables.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("GLOG_minloglevel", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def silence_python_loggers() -> None:
    """Lower absl and TensorFlow Python loggers to errors only."""
    for name in ("absl", "tensorflow", "jax._src.xla_bridge", "orbax", "grain"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|grain|kauldron|etils)\b")


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration of the block.

    TensorFlow's C++ logging (pulled in by `gemma` through `kauldron`) writes
    "All log messages before absl::InitializeLog()" and oneDNN notices at
    import, whatever TF_CPP_MIN_LOG_LEVEL is set to, so the import is wrapped here.
    Python exceptions still propagate and are reported after the block.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

"""Keep TensorFlow, absl and XLA start-up chatter off stderr.

nbgrader gives 0 points to a test cell that writes to stderr, and students
should see the kit's messages rather than backend logs. This module must be
imported before `jax`, `tensorflow` or `gemma`, because the C++ loggers read
these variables once, when their libraries load.
"""

import logging
import os
import warnings

# setdefault lets a user who wants the logs back export the variables.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("GLOG_minloglevel", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def silence_python_loggers() -> None:
    """Lower absl and TensorFlow Python loggers to errors only."""
    for name in ("absl", "tensorflow", "jax._src.xla_bridge", "orbax", "grain"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|grain|kauldron|etils)\b")

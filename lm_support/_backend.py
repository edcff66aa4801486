"""JAX and the `gemma` library, imported once with their start-up noise silenced."""

from lm_support._quiet import silence_python_loggers, stderr_silenced

with stderr_silenced():
    import jax
    import jax.numpy as jnp
    from gemma import gm

    # `gemma` imports its submodules lazily, on first attribute access:
    # touch them here so their imports happen inside the silenced block.
    gm.nn.Gemma3_270M, gm.text.Gemma3Tokenizer, gm.ckpts.load_params

silence_python_loggers()

__all__ = ["gm", "jax", "jnp"]

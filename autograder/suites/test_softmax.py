"""softmax: probabilities from logits over the last axis."""

import ml_dtypes
import numpy as np
import pytest

from autograder import reference_ops
from autograder.feedback import check
from autograder.student import AsJax
from autograder.checks import HUNGRY, THIRSTY, as_array

pytestmark = pytest.mark.exercise("softmax")


def _check_matches(received, logits, what):
    expected = reference_ops.softmax(np.asarray(logits, dtype=np.float64))
    probs = as_array(received, what)
    check(probs.shape == expected.shape, what, f"shape {expected.shape}", f"shape {probs.shape}",
          "Return one probability per logit, over the last axis.")
    probs = probs.astype(np.float64)
    check(bool(np.all(np.isfinite(probs))), what, "finite probabilities", probs,
          "Subtract the maximum logit before exp(): exp(1000) overflows to inf.")
    worst = int(np.argmax(np.abs(probs - expected).reshape(-1)))
    check(np.allclose(probs, expected, rtol=1e-4, atol=1e-7), what,
          f"{expected.reshape(-1)[worst]:.6g} at flat index {worst}",
          f"{probs.reshape(-1)[worst]:.6g}",
          "softmax(x)[i] = exp(x[i]) / sum_j exp(x[j]), over the last axis only.")


@pytest.mark.points(4)
def test_real_logits(student, lab):
    """Matches a float64 softmax on real logits."""
    logits = lab(THIRSTY).logits
    _check_matches(student.softmax(logits), logits,
                   f"softmax(logits) for the next token after {THIRSTY!r}; top tokens {lab(THIRSTY).top()}")


@pytest.mark.points(3)
def test_batched_rows_sum_to_one(student, lab):
    """Batched (B, V) input: each row sums to 1."""
    batch = np.stack([lab(HUNGRY).logits, lab(THIRSTY).logits])
    what = "softmax(logits) for a batch of shape (2, 262144), the hungry and thirsty prompts"
    probs = as_array(student.softmax(batch), what)
    check(probs.shape == batch.shape, what, f"shape {batch.shape}", f"shape {probs.shape}",
          "Normalise over the last axis (axis=-1, keepdims=True), not over the whole array.")
    sums = probs.astype(np.float64).sum(axis=-1)
    check(bool(np.all(np.abs(sums - 1) <= 1e-5)), what, "row sums [1, 1]", f"row sums {sums}",
          "Normalise over the last axis (axis=-1, keepdims=True), not over the whole array.")
    _check_matches(probs, batch, what)


@pytest.mark.points(3)
@pytest.mark.hidden
def test_shifted_logits(student, lab):
    """Logits shifted by +1000 and -1000 give the same probabilities."""
    logits = lab(HUNGRY).logits.astype(np.float32)
    for shift in (1000.0, -1000.0):
        shifted = logits + np.float32(shift)
        _check_matches(student.softmax(shifted), shifted,
                       f"softmax(logits {shift:+g}) for the hungry prompt (softmax is shift-invariant)")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_bfloat16_and_jax_input(student, lab):
    """Accepts bfloat16 and JAX arrays."""
    logits = lab(THIRSTY).logits
    bf16 = logits.astype(ml_dtypes.bfloat16)
    _check_matches(student.softmax(bf16), bf16.astype(np.float64), "softmax(logits) with a bfloat16 NumPy array")
    _check_matches(student.softmax(AsJax(logits)), logits, "softmax(logits) with a jax.Array")


@pytest.mark.points(1)
@pytest.mark.hidden
def test_output_dtype(student, lab):
    """Returns float32 or wider, even for bfloat16 input."""
    bf16 = lab(THIRSTY).logits.astype(ml_dtypes.bfloat16)
    probs = as_array(student.softmax(bf16), "softmax(bfloat16 logits)")
    check(probs.dtype in (np.float32, np.float64), "the dtype of softmax(bfloat16 logits)",
          "float32 or float64", str(probs.dtype),
          "Convert to float32 or float64 first: bfloat16 keeps only about 3 significant digits.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_input_unchanged(student, lab):
    """Leaves its input array unchanged."""
    # The child returns its argument array as it is after the call.
    logits = lab(HUNGRY).logits
    after = student.call("softmax", logits, return_argument=0)
    check(np.array_equal(after, logits), "the logits array after softmax(logits)",
          "the same values as before the call", "modified values",
          "Work on a copy: in-place operations such as `logits -= logits.max()` change the caller's array.")

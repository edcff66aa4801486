"""generate: the decoding loop, greedy or sampled, on the real model."""

import numpy as np
import pytest

from autograder.checks import HUNGRY, OTHER_PROMPTS, THIRSTY, ScriptedModel, one_hot_logits, word_token_ids
from autograder.feedback import CheckFailed, check
from autograder.student import Key

pytestmark = pytest.mark.exercise("generate")

# Tests of the loop run it with the grader's softmax, top_k and samplers, so a
# mistake in those costs only their own points.
HELPERS = ("softmax", "top_k", "greedy_next_token", "sample_next_token", "top_p_filter")


def _as_text(value, what):
    if not isinstance(value, str):
        raise CheckFailed(what, "a str (the decoded new tokens)", value,
                          "Return tokenizer.decode(new_token_ids).")
    return value


def _check_greedy(student, model, prompt, max_new_tokens):
    from lm_support.seed_helpers import generate_ids  # imports JAX; not needed to list the tests
    prompt_ids = model.tokenizer.encode(prompt, add_bos=True)
    expected = model.tokenizer.decode(generate_ids(model, prompt_ids, max_new_tokens, do_sample=False, rng=None))
    what = f"generate(model, {prompt!r}, max_new_tokens={max_new_tokens}, do_sample=False)"
    received = _as_text(student.call("generate", model, prompt, max_new_tokens, False, use_reference=HELPERS), what)
    hint = None
    if received.startswith(prompt):
        hint = "Return only the new text, without the prompt."
    elif received != expected:
        hint = ("Encode the prompt with add_bos=True, append each chosen token to the context, "
                "and call model.next_token_logits on the whole context at every step.")
    check(received == expected, what, repr(expected), repr(received), hint)


def _contexts(student):
    return [list(ask.args[0]) for ask in student.asks if ask.method == "next_token_logits"]


@pytest.mark.points(5)
def test_greedy_lab_prompt(student, model):
    """Greedy text after the thirsty prompt matches the model."""
    _check_greedy(student, model, THIRSTY, 8)


@pytest.mark.points(3)
@pytest.mark.hidden
def test_greedy_other_prompts(student, model):
    """Greedy text for other prompts and lengths."""
    _check_greedy(student, model, HUNGRY, 5)
    _check_greedy(student, model, OTHER_PROMPTS[0], 10)


@pytest.mark.points(3)
@pytest.mark.hidden
def test_context_each_step(student, model):
    """BOS first, one model call per new token, context grows by one."""
    prompt, steps = OTHER_PROMPTS[1], 6
    what = f"the token ids passed to model.next_token_logits by generate(model, {prompt!r}, {steps}, do_sample=False)"
    student.call("generate", model, prompt, steps, False, use_reference=HELPERS)
    contexts = _contexts(student)
    prompt_ids = model.tokenizer.encode(prompt, add_bos=True)
    check(len(contexts) == steps, what, f"{steps} calls, one per new token", f"{len(contexts)} calls",
          "Call model.next_token_logits once per generated token.")
    check(contexts[0] == prompt_ids, what, f"first call with {prompt_ids} (BOS = 2 first)",
          f"first call with {contexts[0]}", "Encode the prompt with tokenizer.encode(prompt, add_bos=True).")
    for before, after in zip(contexts, contexts[1:]):
        check(len(after) == len(before) + 1 and after[:-1] == before, what,
              "each call's ids = the previous call's ids + the new token", f"{before} then {after}",
              "Append each new token id to the context and pass the whole context.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_eos_stops(student, model):
    """Stops after EOS, which is not returned."""
    tokenizer = model.tokenizer
    eos = int(tokenizer.special_tokens.EOS)
    script = word_token_ids(tokenizer, [" water", " and"]) + [eos] + word_token_ids(tokenizer, [" bread"])
    scripted = ScriptedModel(tokenizer, lambda step: one_hot_logits(tokenizer.vocab_size, script[min(step, 3)]))
    scripted.start(THIRSTY)
    what = f"generate(model, {THIRSTY!r}, max_new_tokens=10, do_sample=False) with a model whose 3rd token is EOS"
    received = _as_text(student.call("generate", scripted, THIRSTY, 10, False, use_reference=HELPERS), what)
    check(received == " water and", what, repr(" water and"), repr(received),
          "Stop as soon as the EOS id (tokenizer.special_tokens.EOS) is chosen, and do not decode it.")
    check(len(_contexts(student)) == 3, what, "3 model calls", f"{len(_contexts(student))} model calls")


@pytest.mark.points(3)
def test_sampling_keys(student, model):
    """Sampling splits a fresh key each step and respects rng."""
    tokenizer = model.tokenizer
    words = [" red", " blue", " green", " black", " white", " small", " big", " old",
             " new", " good", " bad", " cold", " warm", " dark", " light", " long"]
    flat = np.full(tokenizer.vocab_size, -1e9, dtype=np.float32)
    flat[word_token_ids(tokenizer, words)] = 0.0
    scripted = ScriptedModel(tokenizer, lambda step: flat)
    scripted.start(HUNGRY)
    steps = 20

    def sampled_ids(*args, **kwargs):
        student.call("generate", scripted, HUNGRY, steps, True, *args, use_reference=HELPERS, **kwargs)
        contexts = _contexts(student)
        return tuple(contexts[-1][len(contexts[0]):]) if contexts else ()

    what = f"generate(model, prompt, {steps}, do_sample=True, rng=jax.random.key(0)) with 16 equally likely tokens"
    first = sampled_ids(Key(0))
    check(len(set(first)) > 1, what, "varied tokens (a new key at every step)",
          f"the same token {len(first)} times",
          "Split the key at every step: rng, step_key = jax.random.split(rng).")
    check(sampled_ids(Key(0)) == first, what + ", twice", "the same tokens for the same rng", "different tokens",
          "Draw only with keys split from rng, never from global random state.")
    check(sampled_ids(Key(1)) != first, "generate with rng=jax.random.key(1) and with jax.random.key(0)",
          "different tokens for different keys", "the same tokens", "Use the rng argument instead of a fixed key.")
    check(sampled_ids() == first, "generate(..., do_sample=True) without rng",
          "the same tokens as with rng=jax.random.key(0)", "different tokens", "rng=None means jax.random.key(0).")

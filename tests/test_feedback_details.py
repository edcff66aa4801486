"""Details of the feedback that the grading suites build."""

import numpy as np

from autograder.checks import ScriptedModel
from autograder.suites.test_top_k import _first_items


def test_long_lists_say_they_are_cut():
    assert _first_items([1, 3, 4, 0]) == "[1, 3, 4, 0]"
    assert _first_items(list(range(200))) == "[0, 1, 2, 3, 4, 5, 6, 7, ...] (the first 8 of 200)"


def test_scripted_model_steps_with_and_without_bos(model):
    """A generation loop that leaves out BOS gets the same scripted steps."""
    tokenizer = model.tokenizer
    scripted = ScriptedModel(tokenizer, lambda step: np.full(tokenizer.vocab_size, step, np.float32))
    scripted.start("Jide was thirsty")
    prompt = tokenizer.encode("Jide was thirsty")
    bos = tokenizer.special_tokens.BOS

    assert scripted.next_token_logits([bos, *prompt])[0] == 0
    assert scripted.next_token_logits([bos, *prompt, 5, 6])[0] == 2
    assert scripted.next_token_logits(prompt)[0] == 0
    assert scripted.next_token_logits([*prompt, 5])[0] == 1

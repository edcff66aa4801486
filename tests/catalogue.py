"""Submissions the grader must judge right: realistic mistakes and correct alternatives.

Each wrong submission is the reference solution with one mistake: either one
function's whole definition replaced, or one edit of a line that must occur
exactly once, so that a change of the solution cannot silently turn a
mutant back into the reference. Each correct alternative replaces whole
functions.
"""

from __future__ import annotations

import ast
import dataclasses


@dataclasses.dataclass(frozen=True)
class Variant:
    """One submission: the solution with some functions replaced.

    Attributes:
      name: short identifier, used as the test id.
      exercise: the function whose points a wrong variant must lose ("" for correct ones).
      replacements: new source of each replaced function, keyed by name.
      imports: extra import lines placed at the top of the file.
      edits: (old, new) text replacements, each of text found exactly once.
    """

    name: str
    exercise: str
    replacements: dict[str, str] = dataclasses.field(default_factory=dict)
    imports: str = ""
    edits: tuple[tuple[str, str], ...] = ()


def build_source(solution: str, variant: Variant) -> str:
    """Return the solution's source with the variant's functions swapped in."""
    tree = ast.parse(solution)
    lines = solution.splitlines(keepends=True)
    spans = {
        node.name: (node.lineno, node.end_lineno)
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }
    missing = set(variant.replacements) - set(spans)
    if missing:
        raise KeyError(f"{variant.name}: the solution has no function {sorted(missing)}")
    # Replace from the bottom up so earlier line numbers stay valid.
    for name, (start, end) in sorted(spans.items(), key=lambda item: -item[1][0]):
        if name in variant.replacements:
            lines[start - 1:end] = [variant.replacements[name].strip("\n") + "\n"]
    source = "".join(lines)
    for old, new in variant.edits:
        if source.count(old) != 1:
            raise ValueError(f"{variant.name}: {old!r} occurs {source.count(old)} times in the solution, not once")
        source = source.replace(old, new)
    if source == solution:
        raise ValueError(f"{variant.name}: the replacement leaves the solution unchanged")
    return variant.imports + source


def _wrong(name: str, exercise: str, code: str, imports: str = "") -> Variant:
    function = code.split("def ", 1)[1].split("(", 1)[0]
    return Variant(name, exercise, {function: code}, imports=imports)


def _edit(name: str, exercise: str, old: str, new: str) -> Variant:
    return Variant(name, exercise, edits=((old, new),))


WRONG = [
    # softmax
    _wrong("softmax_no_max_shift", "softmax", '''
def softmax(logits):
    values = np.asarray(logits, dtype=np.float64)
    return np.exp(values) / np.exp(values).sum(axis=-1, keepdims=True)
'''),
    _wrong("softmax_whole_array", "softmax", '''
def softmax(logits):
    values = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()
'''),
    _wrong("softmax_in_place", "softmax", '''
def softmax(logits):
    values = np.asarray(logits)
    values -= values.max(axis=-1, keepdims=True)
    np.exp(values, out=values)
    values /= values.sum(axis=-1, keepdims=True)
    return values
'''),
    _wrong("softmax_float16_output", "softmax", '''
def softmax(logits):
    values = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float16)
'''),
    _wrong("softmax_unnormalised", "softmax", '''
def softmax(logits):
    values = np.asarray(logits, dtype=np.float64)
    return np.exp(values - values.max(axis=-1, keepdims=True))
'''),
    # top_k
    _wrong("top_k_ascending", "top_k", '''
def top_k(probs, k):
    values = np.asarray(probs)
    if not 1 <= k <= values.shape[-1]:
        raise ValueError("invalid k")
    token_ids = np.argsort(values, kind="stable")[:k]
    return token_ids, values[token_ids]
'''),
    _wrong("top_k_swapped_pair", "top_k", '''
def top_k(probs, k):
    values = np.asarray(probs)
    if not 1 <= k <= values.shape[-1]:
        raise ValueError("invalid k")
    token_ids = np.argsort(-values, kind="stable")[:k]
    return values[token_ids], token_ids
'''),
    _wrong("top_k_ties_higher_id_first", "top_k", '''
def top_k(probs, k):
    values = np.asarray(probs)
    if not 1 <= k <= values.shape[-1]:
        raise ValueError("invalid k")
    token_ids = np.argsort(values, kind="stable")[::-1][:k]
    return token_ids, values[token_ids]
'''),
    _wrong("top_k_no_validation", "top_k", '''
def top_k(probs, k):
    values = np.asarray(probs)
    token_ids = np.argsort(-values, kind="stable")[:k]
    return token_ids, values[token_ids]
'''),
    _wrong("top_k_off_by_one", "top_k", '''
def top_k(probs, k):
    values = np.asarray(probs)
    if not 1 <= k <= values.shape[-1]:
        raise ValueError("invalid k")
    token_ids = np.argsort(-values, kind="stable")[:k + 1]
    return token_ids, values[token_ids]
'''),
    # greedy_next_token
    _wrong("greedy_argmin", "greedy_next_token", '''
def greedy_next_token(logits):
    return int(np.argmin(np.asarray(logits)))
'''),
    _wrong("greedy_returns_logit", "greedy_next_token", '''
def greedy_next_token(logits):
    return float(np.max(np.asarray(logits)))
'''),
    _wrong("greedy_ties_highest_id", "greedy_next_token", '''
def greedy_next_token(logits):
    values = np.asarray(logits)
    return int(values.size - 1 - np.argmax(values[::-1]))
'''),
    # sample_next_token
    _wrong("sample_ignores_temperature", "sample_next_token", '''
def sample_next_token(logits, rng, temperature=1.0):
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    return int(jax.random.categorical(rng, jnp.asarray(logits, dtype=jnp.float32)))
'''),
    _wrong("sample_multiplies_temperature", "sample_next_token", '''
def sample_next_token(logits, rng, temperature=1.0):
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    return int(jax.random.categorical(rng, jnp.asarray(logits, dtype=jnp.float32) * temperature))
'''),
    _wrong("sample_global_numpy_state", "sample_next_token", '''
def sample_next_token(logits, rng, temperature=1.0):
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    probs = softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return int(np.random.choice(probs.size, p=probs))
'''),
    _wrong("sample_double_softmax", "sample_next_token", '''
def sample_next_token(logits, rng, temperature=1.0):
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    probs = softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return int(jax.random.categorical(rng, jnp.asarray(probs, dtype=jnp.float32)))
'''),
    _wrong("sample_fixed_key", "sample_next_token", '''
def sample_next_token(logits, rng, temperature=1.0):
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    scaled = jnp.asarray(logits, dtype=jnp.float32) / temperature
    return int(jax.random.categorical(jax.random.key(0), scaled))
'''),
    _wrong("sample_no_validation", "sample_next_token", '''
def sample_next_token(logits, rng, temperature=1.0):
    scaled = jnp.asarray(logits, dtype=jnp.float32) / temperature
    return int(jax.random.categorical(rng, scaled))
'''),
    # top_p_filter
    _wrong("top_p_drops_crossing_token", "top_p_filter", '''
def top_p_filter(probs, top_p):
    if not 0 < top_p <= 1:
        raise ValueError("top_p must be in (0, 1]")
    values = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    cumulative = np.cumsum(values[order])
    kept = order[cumulative <= top_p]
    if kept.size == 0:
        kept = order[:1]
    filtered = np.zeros_like(values)
    filtered[kept] = values[kept]
    return filtered / filtered.sum()
'''),
    _wrong("top_p_not_renormalised", "top_p_filter", '''
def top_p_filter(probs, top_p):
    if not 0 < top_p <= 1:
        raise ValueError("top_p must be in (0, 1]")
    values = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    cumulative = np.cumsum(values[order])
    last = min(int(np.searchsorted(cumulative, top_p)), values.size - 1)
    filtered = np.zeros_like(values)
    filtered[order[:last + 1]] = values[order[:last + 1]]
    return filtered
'''),
    _wrong("top_p_least_probable_first", "top_p_filter", '''
def top_p_filter(probs, top_p):
    if not 0 < top_p <= 1:
        raise ValueError("top_p must be in (0, 1]")
    values = np.asarray(probs, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(values[order])
    last = min(int(np.searchsorted(cumulative, top_p)), values.size - 1)
    filtered = np.zeros_like(values)
    filtered[order[:last + 1]] = values[order[:last + 1]]
    return filtered / filtered.sum()
'''),
    _wrong("top_p_no_validation", "top_p_filter", '''
def top_p_filter(probs, top_p):
    values = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    cumulative = np.cumsum(values[order])
    last = min(int(np.searchsorted(cumulative, top_p * cumulative[-1])), values.size - 1)
    filtered = np.zeros_like(values)
    filtered[order[:last + 1]] = values[order[:last + 1]]
    return filtered / filtered.sum()
'''),
    # generate: one edit of the reference loop each
    _edit("generate_without_bos", "generate",
          "token_ids = tokenizer.encode(prompt, add_bos=True)", "token_ids = tokenizer.encode(prompt)"),
    _edit("generate_returns_prompt_too", "generate",
          "return tokenizer.decode(new_ids)", "return prompt + tokenizer.decode(new_ids)"),
    _edit("generate_reuses_key", "generate",
          "rng, step_key = jax.random.split(rng)", "step_key = rng"),
    _edit("generate_keeps_eos", "generate",
          "        if token_id == eos:\n            break\n", ""),
    _edit("generate_one_token_short", "generate",
          "for _ in range(max_new_tokens):", "for _ in range(max_new_tokens - 1):"),
    _edit("generate_last_token_context", "generate",
          "logits = model.next_token_logits(token_ids)", "logits = model.next_token_logits([token_ids[0], token_ids[-1]])"),
    # plot_next_token: one edit of the reference plot each
    _edit("plot_always_softmax", "plot_next_token",
          "probs = values if is_distribution else softmax(values)", "probs = softmax(values)"),
    _edit("plot_ascending_bars", "plot_next_token",
          "go.Bar(x=labels, y=top_probs)", "go.Bar(x=labels[::-1], y=top_probs[::-1])"),
    _edit("plot_ignores_keep_top", "plot_next_token",
          "token_ids, top_probs = top_k(probs, keep_top)", "token_ids, top_probs = top_k(probs, 30)"),
    _edit("plot_duplicate_labels", "plot_next_token",
          "        if label in labels:\n", "        if False:\n"),
    _edit("plot_missing_axis_titles", "plot_next_token",
          '        xaxis_title="Tokens",\n        yaxis_title="Probability",\n', ""),
]


def _correct(name: str, *codes: str, imports: str = "") -> Variant:
    replacements = {code.split("def ", 1)[1].split("(", 1)[0]: code for code in codes}
    return Variant(name, "", replacements, imports=imports)


CORRECT = [
    _correct("scipy_softmax", '''
def softmax(logits):
    return scipy.special.softmax(np.asarray(logits, dtype=np.float64), axis=-1)
''', imports="import scipy.special\n"),
    _correct("jax_softmax", '''
def softmax(logits):
    return np.asarray(jax.nn.softmax(jnp.asarray(logits, dtype=jnp.float32), axis=-1))
'''),
    _correct("log_sum_exp_softmax", '''
def softmax(logits):
    values = np.array(logits, dtype=np.float64)
    return np.exp(values - scipy.special.logsumexp(values, axis=-1, keepdims=True))
''', imports="import scipy.special\n"),
    _correct("lax_top_k", '''
def top_k(probs, k):
    values = jnp.asarray(probs, dtype=jnp.float32)
    if not 1 <= k <= values.shape[-1]:
        raise ValueError(f"k must be between 1 and {values.shape[-1]}")
    top_values, token_ids = jax.lax.top_k(values, k)
    return np.asarray(token_ids), np.asarray(probs)[np.asarray(token_ids)]
'''),
    _correct("argpartition_top_k", '''
def top_k(probs, k):
    values = np.asarray(probs)
    if not 1 <= k <= values.size:
        raise ValueError(f"k must be between 1 and {values.size}")
    candidates = np.argpartition(-values, k - 1)[:k]
    threshold = values[candidates].min()
    # Every token tied with the k-th value is a candidate; keep the lowest ids.
    candidates = np.flatnonzero(values >= threshold)
    order = np.lexsort((candidates, -values[candidates]))[:k]
    token_ids = candidates[order]
    return token_ids, values[token_ids]
'''),
    _correct("gumbel_max_sampling", '''
def sample_next_token(logits, rng, temperature=1.0):
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    scaled = jnp.asarray(logits, dtype=jnp.float32) / temperature
    noise = jax.random.gumbel(rng, scaled.shape)
    return int(jnp.argmax(scaled + noise))
'''),
    _correct("inverse_cdf_sampling", '''
def sample_next_token(logits, rng, temperature=1.0):
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    seed = int(jax.random.randint(rng, (), 0, 2**31 - 1))
    probs = softmax(np.asarray(logits, dtype=np.float64) / temperature)
    uniform = np.random.default_rng(seed).random()
    return int(min(np.searchsorted(np.cumsum(probs), uniform * probs.sum()), probs.size - 1))
'''),
    _correct("plotly_express_plot", '''
def plot_next_token(probs_or_logits, tokenizer, prompt, keep_top=30):
    values = np.asarray(probs_or_logits, dtype=np.float64)
    if values.min() < 0 or not np.isclose(values.sum(), 1.0):
        values = softmax(values)
    token_ids, top_probs = top_k(values, keep_top)
    labels = [f"{tokenizer.decode([int(i)])!r} #{int(i)}" for i in token_ids]
    figure = px.bar(x=labels, y=top_probs, title=f"Next token after: {prompt}")
    figure.update_layout(xaxis_title="Tokens", yaxis_title="Probability")
    return figure
''', imports="import plotly.express as px\n"),
    _correct("plain_lists", '''
def softmax(logits):
    rows = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(rows - rows.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).tolist()
''', '''
def top_k(probs, k):
    values = [float(p) for p in np.asarray(probs, dtype=np.float64)]
    if not 1 <= k <= len(values):
        raise ValueError("k out of range")
    token_ids = sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]
    return token_ids, [values[i] for i in token_ids]
''', '''
def greedy_next_token(logits):
    values = list(np.asarray(logits, dtype=np.float64))
    return values.index(max(values))
'''),
    _correct("loop_top_p_and_jax_generate", '''
def top_p_filter(probs, top_p):
    if not (0 < top_p <= 1):
        raise ValueError("top_p must be in (0, 1]")
    values = np.asarray(probs, dtype=np.float64)
    filtered = np.zeros_like(values)
    total = 0.0
    for token_id in sorted(range(values.size), key=lambda i: (-values[i], i)):
        filtered[token_id] = values[token_id]
        total += values[token_id]
        if total >= top_p * values.sum():
            break
    return filtered / filtered.sum()
''', '''
def generate(model, prompt, max_new_tokens=10, do_sample=True, rng=None, temperature=1.0):
    key = jax.random.PRNGKey(0) if rng is None else rng
    context = jnp.asarray(model.tokenizer.encode(prompt, add_bos=True))
    start = context.shape[0]
    while context.shape[0] - start < max_new_tokens:
        logits = model.next_token_logits(context)
        if do_sample:
            key, subkey = jax.random.split(key)
            next_id = sample_next_token(logits, subkey, temperature=temperature)
        else:
            next_id = greedy_next_token(logits)
        if next_id == model.tokenizer.special_tokens.EOS:
            break
        context = jnp.append(context, next_id)
    return model.tokenizer.decode(context[start:])
'''),
]

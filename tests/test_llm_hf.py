import pytest
import torch

from common.llm.base import Branches
from common.llm.hf import HFBackend

PAIRS = [
    ("The cat sat on", " the mat."),
    ("The cat sat on", " a dog ran in the park, and then she sold half as many clips"),
    ("The cat sat on", "!"),
    ("Natalia sold clips", " to 48 of her friends"),
    ([{"role": "user", "content": "How many clips?"}], "The answer is 72."),
    ([{"role": "user", "content": "How many clips?"}], "Let's think step by step."),
]


def reference_logprobs(model, ids_prefix, ids_cont):
    """One plain full forward pass over prefix + continuation, no batching, no cache."""
    with torch.no_grad():
        logits = model(torch.tensor([ids_prefix + ids_cont])).logits[0].float()
    lp = torch.log_softmax(logits, -1)
    return [lp[len(ids_prefix) - 1 + t, tok].item() for t, tok in enumerate(ids_cont)]


def check_against_full_forward(backend, pairs, tol=1e-4):
    for reuse in (True, False):
        backend.prefix_reuse = reuse
        for (prefix, cont), got in zip(pairs, backend.score(pairs)):
            want = reference_logprobs(backend.model, backend.encode_prompt(prefix), backend.encode_text(cont))
            assert got.token_ids == backend.encode_text(cont)
            assert len(got.logprobs) == len(want) > 0
            assert max(abs(a - b) for a, b in zip(got.logprobs, want)) < tol, (reuse, prefix, cont)


BRANCHES = [
    Branches(
        "Natalia sold clips to 48 of her friends in April.",
        [
            (" <BOT>half of 48 is 24<EOT>", " She sold 24 in May."),
            ("", " She sold 24 in May."),
            (" So", " the total is 72."),
        ],
    ),
    Branches([{"role": "user", "content": "The cat sat"}], [("", "on the mat."), (" dog", " ran!")]),
    Branches("Weng earns $12 an hour.", [(" <BOT>rate<EOT>", " She did 50 minutes.")]),
]


def check_branches_against_full_forward(backend, tol=1e-4):
    for reuse in (True, False):
        backend.prefix_reuse = reuse
        got = backend.score_branches(BRANCHES)
        want = [
            reference_logprobs(
                backend.model, backend.encode_prompt(r.prefix) + backend.encode_text(m), backend.encode_text(c)
            )
            for r in BRANCHES
            for m, c in r.branches
        ]
        assert len(got) == len(want) == 6
        for g, w in zip(got, want):
            assert len(g.logprobs) == len(w) and max(abs(a - b) for a, b in zip(g.logprobs, w)) < tol, reuse


STEPS = ["Natalia sold 48 clips in April.", "In May she sold half as many, 24.", "The answer is 72."]
CHAT = [{"role": "user", "content": "How many clips did Natalia sell?"}]


def nested_requests(backend):
    """Every step of a solution given the steps before it (nested prefixes), a duplicate candidate, a
    rationale-style middle after each prefix, and an unrelated request in the same call."""
    frames = [CHAT + [{"role": "assistant", "content": s} for s in STEPS[:i]] for i in range(len(STEPS))]
    reqs = [Branches(f, [("", STEPS[i]), ("", STEPS[i])]) for i, f in enumerate(frames)]
    reqs += [
        Branches(backend.render_chat(f, add_generation_prompt=False), [(" Rationale: sum.", STEPS[i])])
        for i, f in enumerate(frames[1:], 1)
    ]
    return reqs + [Branches("Weng earns $12 an hour.", [("", " She did 50 minutes.")])]


def check_nested_against_full_forward(backend, tol=1e-4):
    reqs = nested_requests(backend)
    want = [
        reference_logprobs(
            backend.model, backend.encode_prompt(r.prefix) + backend.encode_text(m), backend.encode_text(c)
        )
        for r in reqs
        for m, c in r.branches
    ]
    for reuse in (True, False):
        backend.prefix_reuse = reuse
        got = backend.score_branches(reqs)
        assert len(got) == len(want) == 9
        for g, w in zip(got, want):
            assert len(g.logprobs) == len(w) > 0 and max(abs(a - b) for a, b in zip(g.logprobs, w)) < tol, reuse


def test_nested_prefixes_share_one_forward(tiny):
    from common.llm.hf import _trunks

    reqs = nested_requests(tiny)
    items = [
        (tiny.encode_prompt(r.prefix), tiny.encode_text(m), tiny.encode_text(c)) for r in reqs for m, c in r.branches
    ]
    groups = _trunks(list(range(len(items))), items)
    assert sorted(len(m) for _, m in groups) == [1, 8]  # the solution's steps together, the other alone
    check_nested_against_full_forward(tiny)


@pytest.fixture
def tiny(tiny_llama):
    model, tok = tiny_llama
    return HFBackend(model_obj=model, tokenizer=tok, max_batch_tokens=48)  # small budget: several batches


def test_score_matches_full_forward_tiny(tiny):
    check_against_full_forward(tiny, PAIRS)


def test_branches_match_full_forward_tiny(tiny):
    check_branches_against_full_forward(tiny)


def test_scoring_packs_each_batch_into_one_row_and_matches_padded_batches(tiny_llama):
    """Full forwards run packed (one row per batch, position ids restarting per sequence, no pad), with the
    scores of padded batches; a model left on padded batches (packs False) runs several rows."""
    model, tok = tiny_llama
    packed = HFBackend(model_obj=model, tokenizer=tok, prefix_reuse=False)
    assert packed.packs and model.config._attn_implementation == "sdpa_varlen"
    shapes, real = [], model.forward

    def forward(*args, **kw):
        shapes.append(tuple(kw["input_ids"].shape))
        return real(*args, **kw)

    model.forward = forward
    try:
        got = packed.score(PAIRS)
        packed_shapes, shapes[:] = list(shapes), []
        packed.packs = False
        want = packed.score(PAIRS)
    finally:
        del model.forward
    lengths = [len(packed.encode_prompt(p)) + len(packed.encode_text(c)) for p, c in PAIRS]
    assert packed_shapes == [(1, sum(lengths))]
    assert shapes and all(rows > 1 for rows, _ in shapes) and sum(r * w for r, w in shapes) > sum(lengths)
    for g, w in zip(got, want):
        assert g.token_ids == w.token_ids and max(abs(a - b) for a, b in zip(g.logprobs, w.logprobs)) < 1e-5


def test_exactly_one_bos(tiny):
    bos = tiny.tok.bos_token_id
    chat = tiny.encode_prompt([{"role": "user", "content": "hi"}])  # the template writes BOS itself
    raw = tiny.encode_prompt("hi")  # the tokenizer would add it
    assert chat[0] == bos and chat[1] != bos
    assert raw[0] == bos and raw.count(bos) == 1
    assert tiny.encode_text(" the mat.")[0] != bos


def test_empty_continuation_and_prefix(tiny):
    assert tiny.score([("The cat", "")])[0].logprobs == []


def test_sampling_is_seeded_and_independent_of_batching(tiny):
    prompts = ["The cat", [{"role": "user", "content": "hi"}], "Natalia sold clips to 48 of her friends"]
    kw = dict(n=3, temperature=1.0, top_p=0.9, max_tokens=12, seed=5)
    together = tiny.generate(prompts, **kw)
    alone = [tiny.generate([p], **kw)[0] for p in reversed(prompts)][::-1]
    assert [c.texts for c in together] == [c.texts for c in alone]
    assert all(len(c.texts) == 3 for c in together)
    assert len(set(together[0].texts)) > 1  # n samples differ
    assert tiny.generate(prompts, **dict(kw, seed=6))[0].texts != together[0].texts


def test_greedy_logprobs_and_stop(tiny):
    [c] = tiny.generate(["The cat"], n=2, max_tokens=10, logprobs=True)
    assert c.texts[0] == c.texts[1] and len(c.token_logprobs[0]) == 10
    assert all(lp <= 0 for lp in c.token_logprobs[0])
    text = c.texts[0]
    stop = text[3:5]
    [s] = tiny.generate(["The cat"], max_tokens=10, stop=[stop])
    assert stop not in s.texts[0] and text.startswith(s.texts[0])


@pytest.mark.slow
def test_score_matches_full_forward_smollm2(smollm2):
    check_against_full_forward(smollm2, PAIRS)


@pytest.mark.slow
def test_branches_match_full_forward_smollm2(smollm2):
    check_branches_against_full_forward(smollm2)


@pytest.mark.slow
def test_smollm2_generates_chat(smollm2):
    [c] = smollm2.generate([[{"role": "user", "content": "What is 2 + 3? Answer with a number."}]], max_tokens=24)
    assert "5" in c.texts[0]


@pytest.mark.slow
def test_nested_prefixes_match_full_forward_smollm2(smollm2):
    check_nested_against_full_forward(smollm2)


def test_one_prefill_for_n_samples_gives_the_same_samples(tiny_llama):
    """The prompt's KV cache computed once and shared by its n samples (and kept for the next call) gives
    the texts the per-sample prefill gave, sampled and greedy, with stop strings and log-probs."""
    model, tok = tiny_llama
    prompts = [
        "The cat",
        [{"role": "user", "content": "hi there"}],
        "Natalia sold clips to 48 of her friends",
        [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "The cat sat"}],
    ]
    fresh = HFBackend(model_obj=model, tokenizer=tok, prefix_reuse=False)
    shared = HFBackend(model_obj=model, tokenizer=tok, max_batch_tokens=64)  # several batches
    for kw in (
        dict(n=3, temperature=1.0, top_p=0.9, max_tokens=12, seed=5),
        dict(n=2, max_tokens=10, logprobs=True),
        dict(n=2, temperature=0.7, max_tokens=8, seed=1, stop=["at"]),
    ):
        want = fresh.generate(prompts, **kw)
        for _ in range(2):  # the second call starts from the kept caches
            got = shared.generate(prompts, **kw)
            assert [c.texts for c in got] == [c.texts for c in want]
            if kw.get("logprobs"):
                assert all(
                    max(abs(a - b) for a, b in zip(x, y)) < 1e-4
                    for g, w in zip(got, want)
                    for x, y in zip(g.token_logprobs, w.token_logprobs)
                )
    assert shared.kv_store.hits >= len(prompts) and shared.kv_store.reused_tokens > 0


def test_kv_store_reuses_the_longest_prefix_within_its_budget(tiny):
    tiny.generate([[{"role": "user", "content": "hi"}]], max_tokens=2)
    first = tiny.encode_prompt([{"role": "user", "content": "hi"}])
    n, cache = tiny.kv_store.lookup(first + [5, 6], 10**6)
    assert n == len(first) - 1 and cache.get_seq_length() == n  # all of the prompt but its last token
    longer = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "The cat"}]
    tiny.generate([longer], max_tokens=2)
    assert len(tiny.kv_store.entries) == 1  # the longer prompt extends the first: it replaced it
    small = HFBackend(model_obj=tiny.model, tokenizer=tiny.tok, kv_cache_tokens=30)
    small.generate(
        ["The cat sat on the mat and the dog", "Natalia sold clips to 48 of her friends in April"], max_tokens=2
    )
    assert sum(len(k) for k in small.kv_store.entries) <= 30  # over budget: the least recently used went
    assert HFBackend(model_obj=tiny.model, tokenizer=tiny.tok, kv_cache_tokens=0).kv_store.entries == {}

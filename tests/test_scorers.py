"""common/scorers.py: every step scorer, on real (tiny) models where it has one; the one-pass scoring of a
solution's steps against one full forward per step."""

import math

import pytest
import torch

from common.llm.base import Completion
from common.llm.hf import HFBackend
from common.scorers import (
    SCORER_SYSTEM,
    Candidates,
    CriticScorer,
    JudgeScorer,
    LengthScorer,
    LikelihoodScorer,
    OracleScorer,
    PositionScorer,
    RandomScorer,
    RationalystScorer,
    StepContext,
    score_solutions,
)

QUESTION = [
    {"role": "user", "content": "Question: Natalia sold 48 clips in April and half as many in May. How many?\nAnswer:"}
]
STEPS = ["In May she sold 48 / 2 = 24 clips.", "Altogether she sold 48 + 24 = 72 clips.", "The answer is: 72."]


def full_forward_mean(backend, prompt, continuation) -> float:
    """One plain forward over prompt + continuation, no cache, no batching."""
    p, c = backend.encode_prompt(prompt), backend.encode_text(continuation)
    with torch.no_grad():
        lp = torch.log_softmax(backend.model(torch.tensor([p + c])).logits[0].float(), -1)
    return sum(lp[len(p) - 1 + t, tok].item() for t, tok in enumerate(c)) / len(c)


def per_step_reference(backend, rationales=None) -> list[float]:
    out = []
    for i, step in enumerate(STEPS):
        frame = (
            [{"role": "system", "content": SCORER_SYSTEM}]
            + QUESTION
            + [{"role": "assistant", "content": s} for s in STEPS[:i]]
        )
        if rationales is not None:
            frame.append({"role": "assistant", "content": f"Rationale: {rationales[i]}"})
        out.append(full_forward_mean(backend, backend.render_chat(frame), step))
    return out


@pytest.fixture
def tiny(tiny_llama):
    model, tok = tiny_llama
    return HFBackend(model_obj=model, tokenizer=tok)


def check_one_pass(backend):
    sol = {"id": "s", "messages": QUESTION, "steps": STEPS}
    calls = []
    real = backend.model.forward

    def counting(*a, **kw):
        calls.append(kw.get("input_ids", a[0] if a else None).shape)
        return real(*a, **kw)

    backend.model.forward = counting
    try:
        [got] = score_solutions(LikelihoodScorer(backend), [sol])
    finally:
        backend.model.forward = real
    want = per_step_reference(backend)
    assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4
    assert len(calls) == 1  # every step lies on one forward over the whole solution
    return got


def test_one_pass_equals_per_step_forwards_tiny(tiny):
    check_one_pass(tiny)


@pytest.mark.slow
def test_one_pass_equals_per_step_forwards_smollm2(smollm2):
    check_one_pass(smollm2)


class Writes:
    """A rationale model stand-in that answers with fixed text and records its prompts (the prompts are the
    subject here; the scorer's model is real)."""

    def __init__(self, text):
        self.text, self.prompts = text, []

    def generate(self, prompts, **kw):
        self.prompts += prompts
        return [Completion(texts=[self.text]) for _ in prompts]


def test_rationalyst_scores_are_the_mean_logprob_given_trajectory_and_rationale(tiny):
    """6.3: the rationale model sees the text so far as one user turn; the score is the candidate's mean token
    log-prob in [system_S] + trajectory + assistant("Rationale: r"), equal to a hand computation."""
    writer = Writes("  first   halve 48.  ")
    scorer = RationalystScorer(writer, tiny, max_tokens=8, seed=0)
    got = score_solutions(scorer, [{"id": "s", "messages": QUESTION, "steps": STEPS}])[0]
    assert [p[0]["content"] for p in writer.prompts] == [
        QUESTION[0]["content"] + "".join(" " + s for s in STEPS[:i]) for i in range(3)
    ]
    want = per_step_reference(tiny, ["first halve 48."] * 3)
    assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4
    assert got != pytest.approx(per_step_reference(tiny), abs=1e-3)  # the rationale changes the scores
    ctx = StepContext("q", QUESTION, STEPS[:1])
    [three] = scorer.score([Candidates(ctx, [STEPS[1], "No.", STEPS[2]])], scorer.prepare([ctx]))
    assert three[0] == pytest.approx(want[1], abs=1e-4) and len(three) == 3


class Judge:
    """A judge stand-in whose reply depends on the partial solution it is shown; it records the prompts."""

    def __init__(self):
        self.prompts = []

    def generate(self, prompts, **kw):
        self.prompts += prompts
        replies = {"= 72.": "Reward: 3", "= 24.": "Reward: 1"}
        return [
            Completion(texts=[next((r for end, r in replies.items() if p[-1]["content"].endswith(end)), "no idea")])
            for p in prompts
        ]


def test_judge_ratings_go_to_their_candidates():
    judge = Judge()
    ctx = StepContext("q", QUESTION, STEPS[:1])
    scores = JudgeScorer(judge, "reward_0_3", 0).score(
        [Candidates(ctx, ["So 48 - 24 = 24.", "So 48 + 24 = 72."]), Candidates(ctx, ["Hmm."])], [None, None]
    )
    assert scores == [[1.0, 3.0], [-1.0]]
    assert len(judge.prompts) == 3 and judge.prompts[0][0]["role"] == "system"
    assert judge.prompts[1][-1]["content"].endswith(f"{STEPS[0]} So 48 + 24 = 72.")
    rated = JudgeScorer(Judge(), "rating_1_10", 0)
    assert rated.prompt(ctx, "x")[0]["content"].endswith("Reply with the number only.")
    with pytest.raises(ValueError, match="judge_scale"):
        JudgeScorer(judge, "stars", 0)


def test_trivial_scorers_and_the_oracle():
    ctx = StepContext("q", QUESTION, STEPS[:2])
    batch = [Candidates(ctx, ["a b c.", "a."], labels=[1, 0], total_steps=3)]
    assert OracleScorer().score(batch, [None]) == [[1.0, 0.0]]
    assert PositionScorer().score(batch, [None]) == [[-1.0, -1.0]]  # the last of three steps
    assert LengthScorer().score(batch, [None]) == [[-4.0, -2.0]]
    assert RandomScorer(1).score(batch, [None]) == RandomScorer(1).score(batch, [None])
    with pytest.raises(ValueError, match="labels"):
        OracleScorer().score([Candidates(ctx, ["a"])], [None])


def test_refiner_critic_scores_no_hint_probability(tiny_t5_dir):
    scorer = CriticScorer(tiny_t5_dir, "cpu")
    ctx = StepContext("q", QUESTION, STEPS[:1])
    [scores] = scorer.score([Candidates(ctx, [STEPS[1], "unrelated"])], [None])
    assert all(s < 0 and math.isfinite(s) for s in scores) and scores[0] != scores[1]
    assert scorer.scale == "log"


def test_confidence_scores_each_candidates_rationale(tiny):
    """6.5: a rationale per candidate trajectory, scored by its own mean token log-prob (the last token left
    out); on the tiny model, the log-probs are those the generation reports."""
    from common.scorers import ConfidenceScorer

    scorer = ConfidenceScorer(tiny, max_tokens=6, seed=0)
    ctx = StepContext("q", QUESTION, STEPS[:1])
    [scores], [rationales] = scorer.score_with_rationales([Candidates(ctx, [STEPS[1], "No."])], [None])
    assert scorer.score([Candidates(ctx, [STEPS[1], "No."])], [None]) == [scores]
    prompts = [[{"role": "user", "content": f"{ctx.text} {s}"}] for s in (STEPS[1], "No.")]
    want = tiny.generate(prompts, max_tokens=6, seed=0, logprobs=True)
    assert scores == pytest.approx([sum(w.token_logprobs[0][:-1]) / (len(w.token_logprobs[0]) - 1) for w in want])
    assert rationales == [" ".join(w.texts[0].split()) for w in want]

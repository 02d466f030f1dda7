"""Step scorers: one registry for choosing among candidate next steps at inference (model_inference.inference)
and for verifying labelled steps (model_inference.verify_steps), so every scorer is measured the way it is used.

A scorer gets batches of `Candidates` (a `StepContext`: the question's chat and the steps so far, and the
candidate next steps) and returns one score per candidate, higher = better:

  rationalyst     implicit supervision (rationalyst.md 6.3, steps 1-4): the rationale model writes a rationale
                  for the text so far (one user turn, greedy); the score is the candidate's mean token log-prob
                  under the scorer in the frame [system_S] + trajectory + assistant("Rationale: r") + candidate
  likelihood      the same scorer and frame without the rationale turn: what the rationale adds is the
                  difference between the two (every report shows both)
  llm_judge       a judge model (its own name and URL: any OpenAI-compatible server) rates the partial
                  solution: the paper's verifier prompt, a 0-3 reward (6.5), or a 1-10 self-rating
  refiner_critic  a trained REFINER critic (seq2seq): log P("No hint." | question + the partial solution)
  random          seeded uniform scores: the lower bound
  oracle          the step's label (1 correct, 0 wrong): the upper bound of every table, never a method
  position        minus the step's relative position in its solution (later steps are wrong more often)
  length          minus the step's length in tokens (longer steps are wrong more often)
`position` and `length` are the trivial baselines: benchmarks built by editing solutions carry such
shortcuts, and a scorer's number means something only beside them.

Scores that need a rationale get it from `prepare(contexts)`, before the candidates exist, so the inference
loop can also show it to the agent (the explicit variant). Requests are laid out so that the backends share
work: the k candidates after one trajectory share their prefix, and every step of one solution, scored given
the steps before it, nests in the next (common.llm.hf computes such a solution in one forward pass).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from common.config import option
from common.llm.base import Branches
from common.registry import lookup

# 6.3 step 4: the scorer's system message (in this project's words)
SCORER_SYSTEM = (
    "Continue the text consistently with what precedes it and with the rationales, which start with 'Rationale: '."
)
# 6.5 (gpt4_world / llama3_world), in this project's words: a 0-3 reward for the partial trajectory
JUDGE_SYSTEM = (
    "You assess partial solutions to problems. Given a problem and a partial solution, assign a reward from 0 to 3 "
    "to the partial solution: the more likely it is correct and leads to the right answer, the higher the reward. "
    "Reply with 'Reward: N' only."
)
JUDGE_USER = "Problem and partial solution:\n\n{trajectory}"
# the earlier self-rating (an agent-type model rates the proposed next step 1-10)
RATING_PROMPT = (
    "Here is a problem and a partial solution.\n\n{trajectory}\n\nProposed next step: {step}\n\n"
    "How likely is this step to be correct and useful, on a scale from 1 to 10? Reply with the number only."
)
JUDGE_SCALES = ("reward_0_3", "rating_1_10")
NO_HINT = "No hint."


@dataclass
class StepContext:
    """The state before a step: the chat (few-shot turns, then the question as the last user turn) and the
    steps taken so far."""

    id: str
    messages: list[dict]
    steps: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return self.messages[-1]["content"]

    @property
    def text(self) -> str:
        """The trajectory as plain text: the question's prefix and the steps, joined by spaces (6.3)."""
        return self.prefix + "".join(" " + s for s in self.steps)

    def chat(self) -> list[dict]:
        return self.messages + [{"role": "assistant", "content": s} for s in self.steps]


@dataclass
class Candidates:
    context: StepContext
    steps: list[str]
    labels: list[int | None] | None = None  # 1 correct, 0 wrong: only `oracle` reads them
    total_steps: int | None = None  # the solution's length, where known (`position`)


@dataclass
class ScorerOptions:
    """The models behind the step scorers (each a registry name, Hub id, path or served name)."""

    rationale_model: str = option("", "rationalyst: the fine-tuned rationale model")
    rationale_base_url: str = option("", "openai backend: the rationale model's server (default: base_url)")
    rationale_max_tokens: int = option(128, "tokens per rationale (the reference allowed 1000)")
    scorer_model: str = option(
        "", "rationalyst, likelihood: the scorer (default: the agent model; paper: LLaMA-3-8B-Instruct)"
    )
    scorer_base_url: str = option("", "openai backend: the scorer's server (default: base_url)")
    judge_model: str = option("", "llm_judge: the judge (default: the agent model; the paper's verifier: GPT-4)")
    judge_base_url: str = option("", "llm_judge: its OpenAI-compatible server (default: base_url)")
    judge_backend: str = option("", "llm_judge: 'hf' or 'openai' (default: backend)")
    judge_scale: str = option("reward_0_3", "llm_judge: 'reward_0_3' (the paper's verifier, 6.5) or 'rating_1_10'")
    critic_model: str = option("", "refiner_critic: a trained REFINER critic (finetune's final/)")


class Backends:
    """The models a run needs, each built once: the agent (`cfg` itself) and the scorers' models, which
    default to the agent when not named."""

    def __init__(self, cfg):
        from common.llm import make_backend

        self.cfg, self._make, self._built = cfg, make_backend, {}

    def get(self, model: str = "", base_url: str = "", backend: str = ""):
        cfg = self.cfg
        key = (backend or cfg.backend, model or cfg.model, base_url or cfg.base_url)
        if key not in self._built:
            self._built[key] = self._make(replace(cfg, backend=key[0], model=key[1], base_url=key[2]))
        return self._built[key]

    @property
    def agent(self):
        return self.get()


class StepScorer:
    """The interface. `prepare` gives per-context state (a rationale, or None); `score` scores candidates."""

    needs_labels = False
    scale = "linear"  # "log": scores are log-probabilities (a solution's product of them is their sum)

    def prepare(self, contexts: list[StepContext]) -> list[str | None]:
        return [None] * len(contexts)

    def score(self, batch: list[Candidates], prepared: list[str | None]) -> list[list[float]]:
        raise NotImplementedError

    def score_with_rationales(
        self, batch: list[Candidates], prepared: list[str | None]
    ) -> tuple[list[list[float]], list[list[str]] | None]:
        """The scores and, where the scorer writes one per candidate, the rationale each was scored with
        (returned, not kept on the scorer, so that threads may score at once)."""
        return self.score(batch, prepared), None


class LikelihoodScorer(StepScorer):
    """Mean token log-prob of the candidate as the next assistant turn, under the scorer (6.3 step 4)."""

    scale = "log"

    def __init__(self, scorer):
        self.llm = scorer

    def frame(self, ctx: StepContext) -> list[dict]:
        return [{"role": "system", "content": SCORER_SYSTEM}] + [m for m in ctx.chat() if m["role"] != "system"]

    def request(self, ctx: StepContext, rationale: str | None, steps: list[str]) -> Branches:
        frame = self.frame(ctx)
        if rationale is None:
            return Branches(self.llm.render_chat(frame), [("", c) for c in steps])
        # the rationale is its own assistant turn: split there, so that every step of a solution shares the
        # trajectory before it with the other steps (nested prefixes), and the k candidates share it all
        head = self.llm.render_chat(frame, add_generation_prompt=False)
        full = self.llm.render_chat(frame + [{"role": "assistant", "content": f"Rationale: {rationale}"}])
        if not full.startswith(head):
            return Branches(full, [("", c) for c in steps])
        return Branches(head, [(full[len(head) :], c) for c in steps])

    def score(self, batch, prepared):
        flat = self.llm.score_branches([self.request(c.context, r, c.steps) for c, r in zip(batch, prepared)])
        out, pos = [], 0
        for c in batch:
            out.append([s.mean if not s.error and s.logprobs else -math.inf for s in flat[pos : pos + len(c.steps)]])
            pos += len(c.steps)
        return out


class RationalystScorer(LikelihoodScorer):
    """Implicit supervision: the likelihood given the rationale model's rationale for the text so far."""

    def __init__(self, rationale_llm, scorer, max_tokens: int, seed: int):
        super().__init__(scorer)
        self.rationale_llm, self.max_tokens, self.seed = rationale_llm, max_tokens, seed

    def prepare(self, contexts):
        done = self.rationale_llm.generate(
            [[{"role": "user", "content": c.text}] for c in contexts], max_tokens=self.max_tokens, seed=self.seed
        )
        return [" ".join(c.texts[0].split()) if not c.error else "" for c in done]


class ConfidenceScorer(StepScorer):
    """RATIONALYST's own confidence (rationalyst.md 6.5, `world_model_perplexity` of the older scripts): the
    rationale model writes a rationale for each candidate trajectory (the text so far and the candidate, one
    user turn, greedy); the score is that rationale's mean token log-prob, its last token excluded (6.3 step
    1). No scorer model. The rationales are kept for the explicit variant, which shows the chosen one."""

    scale = "log"

    def __init__(self, rationale_llm, max_tokens: int, seed: int):
        self.llm, self.max_tokens, self.seed = rationale_llm, max_tokens, seed

    def score(self, batch, prepared):
        return self.score_with_rationales(batch, prepared)[0]

    def score_with_rationales(self, batch, prepared):
        prompts = [[{"role": "user", "content": f"{c.context.text} {s}"}] for c in batch for s in c.steps]
        done = self.llm.generate(prompts, max_tokens=self.max_tokens, seed=self.seed, logprobs=True) if prompts else []
        scores, texts, pos = [], [], 0
        for c in batch:
            mine = done[pos : pos + len(c.steps)]
            pos += len(c.steps)
            texts.append([" ".join(d.texts[0].split()) if not d.error else "" for d in mine])
            scores.append(
                [_mean_but_last(d.token_logprobs[0]) if not d.error and d.token_logprobs else -math.inf for d in mine]
            )
        return scores, texts


def _mean_but_last(logprobs: list[float]) -> float:
    kept = logprobs[:-1] if len(logprobs) > 1 else logprobs
    return sum(kept) / len(kept) if kept else -math.inf


def judge_reward(text: str, scale: str) -> float:
    """The judge's number, capped to its scale; -1 when the reply has none (it ranks below every rated step;
    the reference drew a random reward instead, 6.5)."""
    if scale == "reward_0_3":
        m = re.search(r"reward\s*[:=]?\s*(\d+(?:\.\d+)?)", text, re.IGNORECASE) or re.search(r"\b\d+(?:\.\d+)?", text)
        return min(float(m.group(1) if m.re.groups else m.group()), 3.0) if m else -1.0
    m = re.search(r"\d+(?:\.\d+)?", text)
    return min(float(m.group()), 10.0) if m else -1.0


class JudgeScorer(StepScorer):
    def __init__(self, judge, scale: str, seed: int):
        if scale not in JUDGE_SCALES:
            raise ValueError(f"judge_scale must be one of {', '.join(JUDGE_SCALES)}, not {scale!r}")
        self.llm, self.scale, self.seed = judge, scale, seed

    def prompt(self, ctx: StepContext, step: str) -> list[dict]:
        if self.scale == "rating_1_10":
            return [{"role": "user", "content": RATING_PROMPT.format(trajectory=ctx.text, step=step)}]
        trajectory = f"{ctx.text} {step}"
        return [
            {"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": JUDGE_USER.format(trajectory=trajectory)},
        ]

    def score(self, batch, prepared):
        prompts = [self.prompt(c.context, s) for c in batch for s in c.steps]
        ratings = self.llm.generate(prompts, max_tokens=8, seed=self.seed) if prompts else []
        out, pos = [], 0
        for c in batch:
            out.append(
                [
                    judge_reward(r.texts[0], self.scale) if not r.error else -1.0
                    for r in ratings[pos : pos + len(c.steps)]
                ]
            )
            pos += len(c.steps)
        return out


class CriticScorer(StepScorer):
    """log P("No hint." | critic_input(question, partial solution)) under a trained REFINER critic."""

    scale = "log"

    def __init__(self, model_name: str, device: str = "auto", batch_size: int = 32, max_length: int = 256):
        from common.tasks.refiner.seq2seq import load_seq2seq

        self.model, self.tok = load_seq2seq(model_name, device)
        self.model.eval()
        self.batch_size, self.max_length = batch_size, max_length

    def score(self, batch, prepared):
        import torch

        from common.tasks.refiner.format import critic_input
        from common.tasks.refiner.seq2seq import encode
        from common.training import IGNORE, target_ids

        texts = [critic_input(c.context.prefix, " ".join([*c.context.steps, s])) for c in batch for s in c.steps]
        target = target_ids(self.tok, NO_HINT, self.max_length)
        flat: list[float] = []
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                chunk = texts[i : i + self.batch_size]
                enc = encode(self.tok, chunk, self.max_length, self.model.device)
                labels = torch.tensor([target] * len(chunk), device=self.model.device)
                logits = self.model(**enc, labels=labels).logits.float()
                lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
                flat.extend((lp * (labels != IGNORE)).sum(-1).tolist())
        out, pos = [], 0
        for c in batch:
            out.append(flat[pos : pos + len(c.steps)])
            pos += len(c.steps)
        return out


def _seeded_uniform(*parts) -> float:
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class RandomScorer(StepScorer):
    def __init__(self, seed: int):
        self.seed = seed

    def score(self, batch, prepared):
        return [
            [_seeded_uniform(self.seed, c.context.id, len(c.context.steps), j) for j in range(len(c.steps))]
            for c in batch
        ]


class OracleScorer(StepScorer):
    needs_labels = True

    def score(self, batch, prepared):
        if any(c.labels is None for c in batch):
            raise ValueError("the oracle scorer reads step labels: it exists for verification data only")
        return [[0.5 if lab is None else float(lab) for lab in c.labels] for c in batch]


class PositionScorer(StepScorer):
    def score(self, batch, prepared):
        out = []
        for c in batch:
            i, n = len(c.context.steps), c.total_steps
            out.append([-(i / (n - 1)) if n and n > 1 else -float(i)] * len(c.steps))
        return out


TOKEN_RE = re.compile(r"\w+|[^\w\s]")


class LengthScorer(StepScorer):
    def score(self, batch, prepared):
        return [[-float(len(TOKEN_RE.findall(s))) for s in c.steps] for c in batch]


def _rationalyst(cfg, models: Backends) -> StepScorer:
    if not cfg.rationale_model:
        raise SystemExit("the rationalyst scorer needs --rationale-model")
    return RationalystScorer(
        models.get(cfg.rationale_model, cfg.rationale_base_url),
        models.get(cfg.scorer_model, cfg.scorer_base_url),
        cfg.rationale_max_tokens,
        cfg.seed,
    )


def _refiner_critic(cfg, models: Backends) -> StepScorer:
    if not cfg.critic_model:
        raise SystemExit("the refiner_critic scorer needs --critic-model (a trained REFINER critic)")
    return CriticScorer(cfg.critic_model, getattr(cfg, "device", "auto"))


# name -> builder(cfg, backends): each builds its models only when it is the one asked for
SCORERS: dict[str, Callable[[Any, Backends], StepScorer]] = {
    "rationalyst": _rationalyst,
    "likelihood": lambda cfg, m: LikelihoodScorer(m.get(cfg.scorer_model, cfg.scorer_base_url)),
    "rationale_confidence": lambda cfg, m: ConfidenceScorer(
        m.get(cfg.rationale_model or cfg.model, cfg.rationale_base_url), cfg.rationale_max_tokens, cfg.seed
    ),
    "llm_judge": lambda cfg, m: JudgeScorer(
        m.get(cfg.judge_model, cfg.judge_base_url, cfg.judge_backend), cfg.judge_scale, cfg.seed
    ),
    "refiner_critic": _refiner_critic,
    "random": lambda cfg, m: RandomScorer(cfg.seed),
    "oracle": lambda cfg, m: OracleScorer(),
    "position": lambda cfg, m: PositionScorer(),
    "length": lambda cfg, m: LengthScorer(),
}


def make_scorer(name: str, cfg, models: Backends) -> StepScorer:
    return lookup(SCORERS, name, "step scorer")(cfg, models)


def best(scores: list[float]) -> int:
    """The highest score's index; ties go to the first (deterministic)."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def score_solutions(scorer: StepScorer, solutions: list[dict]) -> list[list[float]]:
    """Every step of every solution ({"id", "messages", "steps", "labels"?}), each given the steps before it:
    one Candidates per position. On `hf` the positions of one solution nest, so they cost one forward."""
    batch, owner = [], []
    for k, sol in enumerate(solutions):
        n = len(sol["steps"])
        for i, step in enumerate(sol["steps"]):
            ctx = StepContext(sol["id"], sol["messages"], sol["steps"][:i])
            labels = [sol["labels"][i]] if sol.get("labels") is not None else None
            if labels is None and sol.get("correct") is not None:  # best-of-N: the solution's correctness
                labels = [int(sol["correct"])]
            batch.append(Candidates(ctx, [step], labels, n))
            owner.append(k)
    scores = scorer.score(batch, scorer.prepare([c.context for c in batch])) if batch else []
    out: list[list[float]] = [[] for _ in solutions]
    for k, s in zip(owner, scores):
        out[k].append(s[0])
    return out


__all__ = [
    "SCORERS",
    "Backends",
    "Candidates",
    "ScorerOptions",
    "StepContext",
    "StepScorer",
    "best",
    "make_scorer",
    "score_solutions",
]

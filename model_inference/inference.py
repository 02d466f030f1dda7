"""Rationale-guided stepwise inference (rationalyst.md section 6).

Each question is a trajectory: a few-shot chat (one user turn per question, one assistant turn
per step), the question's prefix "Question: ...\\nAnswer:", then the chosen steps. Each round:
  1. the rationale model writes a rationale for the trajectory so far (user turn = the text so far);
  2. the agent proposes k candidate next steps (k = 3, temperature 0.7);
  3. the heuristic picks one:
       rationalyst           mean token log-prob of the candidate under the scorer, given the
                             trajectory and "Rationale: ..." (implicit supervision, 6.3 step 4)
       rationalyst_explicit  the rationale is shown to the agent; the scorer then picks as above
       random                uniform choice (the paper's "without RATIONALYST")
       greedy                one candidate at temperature 0
       llm_judge             the agent-type model rates each candidate 1-10 (a verifier baseline)
       self_consistency      k independent sampled trajectories, majority vote over their answers
  4. stop when the chosen step states the answer ("The answer is"; MATH also "\\boxed"), or after `max_steps` (15).
The stop check runs on the chosen step itself (the reference checked one round late, 6.3).
All questions advance together: each round is one batched call per model; the scorer computes the
trajectory + rationale once for the k candidates. Writes one record per question, with the answer
extracted from the final step both ways: `prediction`/`correct` (flexible) and `prediction_strict`/
`correct_strict`. The benchmarks (--dataset) are defined in common/tasks/rationalyst.

    python -m model_inference.inference --dataset gsm8k=../shared/data/gsm8k --heuristic rationalyst \\
        --rationale-model runs/rationalyst_model/final --output runs/inference/gsm8k-rationalyst
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import StageConfig, option, parse_config
from common.llm import LLMOptions, make_backend
from common.llm.base import Branches
from common.stage import run_stage, shard_finished
from common.tasks.rationalyst import choose_shots, context, parse_dataset

HEURISTICS = ("rationalyst", "rationalyst_explicit", "random", "greedy", "llm_judge", "self_consistency")
# 6.3 step 4: the scorer's system message (in this project's words)
SCORER_SYSTEM = (
    "Continue the text consistently with what precedes it and with the rationales, which start with 'Rationale: '."
)
JUDGE_PROMPT = (
    "Here is a problem and a partial solution.\n\n{trajectory}\n\nProposed next step: {step}\n\n"
    "How likely is this step to be correct and useful, on a scale from 1 to 10? Reply with the number only."
)


@dataclass
class InferenceConfig(StageConfig, LLMOptions):
    dataset: str = option(
        "gsm8k",
        "gsm8k, math, ecqa, hellaswag, proofwriter, arc or mmlu_pro (from the Hub), NAME=PATH "
        "(a local folder or file in the set's original format), or gsm_symbolic (offline "
        "GSM8K-style problems)",
    )
    split: str = option("", "split to answer (default: the task's; validation for ecqa and hellaswag, else test)")
    limit: int = option(0, "first N questions (0 = all)")
    heuristic: str = option("rationalyst", "one of: " + ", ".join(HEURISTICS))
    k: int = option(3, "candidate steps per round (self_consistency: trajectories)")
    temperature: float = option(0.7, "agent sampling temperature for candidates")
    max_steps: int = option(15, "rounds per question at most")
    step_max_tokens: int = option(256, "tokens per step")
    shots: int = option(
        -1,
        "few-shot items; -1: the task's (6.2: gsm8k 9, math 5, ecqa 8, arc 8, proofwriter 3, "
        "mmlu_pro 5 of the question's category, hellaswag 4)",
    )
    rationale_model: str = option("", "the fine-tuned rationale model (registry name, path or served name)")
    rationale_base_url: str = option("", "openai backend: its server (default: base_url)")
    rationale_max_tokens: int = option(128, "tokens per rationale (the reference allowed 1000)")
    scorer_model: str = option("", "the scorer (default: the agent model; the paper used LLaMA-3-8B-Instruct)")
    scorer_base_url: str = option("", "openai backend: its server (default: base_url)")
    batch_size: int = option(16, "questions advanced together")
    seed: int = option(14, "seed (the reference's)")


# ----------------------------------------------------------------------------- data and prompts


def load_questions(cfg: InferenceConfig) -> tuple[Any, list[dict], Callable[[dict], list[dict]]]:
    """(task, questions, context): context(q) is q's chat before any step: [system] + few-shot turns +
    user(prefix) (6.2). Few-shot items are never questions being answered: from the same local file they
    are held out of the questions; otherwise questions are excluded from the pool before drawing."""
    try:
        _, task, path = parse_dataset(cfg.dataset)
    except ValueError as exc:
        raise SystemExit(f"--dataset: {exc}") from None
    n = task.DEFAULT_SHOTS if cfg.shots < 0 else cfg.shots
    questions = task.load(cfg.split or task.DEFAULT_SPLIT, path)
    pool = task.shot_pool(path) if n else []
    if path and Path(path).is_file():
        shots = choose_shots(task, pool, n, cfg.seed)
        held = {s["question"] for group in shots.values() for s in group}
        questions = [q for q in questions if q["question"] not in held]
    else:
        shots = choose_shots(task, pool, n, cfg.seed, exclude={q["question"] for q in questions})
    if cfg.limit:
        questions = questions[: cfg.limit]
    return task, questions, lambda q: context(task, q, shots)


# ----------------------------------------------------------------------------- choosing


def choose(heuristic: str, candidates: list[str], scores: list[float] | None, rng: random.Random) -> int:
    """Index of the chosen candidate. Ties go to the first (deterministic)."""
    if not candidates:
        raise ValueError("no candidates")
    if heuristic in ("rationalyst", "rationalyst_explicit", "llm_judge"):
        return max(range(len(candidates)), key=lambda i: (scores[i], -i))
    if heuristic == "random":
        return rng.randrange(len(candidates))
    return 0  # greedy, and each self-consistency lane (one sample per round)


def majority(answers: list[str | None]) -> str | None:
    """Most frequent non-empty answer; ties go to the one reached first."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def judge_score(text: str) -> float:
    m = re.search(r"\d+(?:\.\d+)?", text)
    return min(float(m.group()), 10.0) if m else 0.0


def scoring_request(scorer, messages: list[dict], rationale: str, candidates: list[str]) -> Branches:
    """6.3 step 4: [system_S] + trajectory + assistant("Rationale: r"), then each candidate as the next
    assistant turn; the frame is one shared prefix for the k candidates."""
    frame = [{"role": "system", "content": SCORER_SYSTEM}] + [m for m in messages if m["role"] != "system"]
    frame.append({"role": "assistant", "content": f"Rationale: {rationale}"})
    return Branches(scorer.render_chat(frame), [("", c) for c in candidates])


# ----------------------------------------------------------------------------- the loop


@dataclass
class Trajectory:
    qid: str
    lane: int
    messages: list[dict]  # few-shot + user(prefix) + assistant(step)...
    text: str  # prefix + chosen steps joined by spaces (the rationale model's input)
    steps: list[dict]
    finished: bool = False
    stopped: str = "step_limit"


def run_batch(
    cfg: InferenceConfig,
    task,
    context_of: Callable[[dict], list[dict]],
    agent,
    rationale_llm,
    scorer,
    batch: list[dict],
) -> list:
    lanes = cfg.k if cfg.heuristic == "self_consistency" else 1
    trajs = []
    for q in batch:
        messages, prefix = context_of(q), task.prefix(q)
        for lane in range(lanes):
            trajs.append(Trajectory(q["id"], lane, messages, prefix, []))
    uses_rationale = cfg.heuristic in ("rationalyst", "rationalyst_explicit")
    greedy = cfg.heuristic == "greedy"
    for round_ in range(cfg.max_steps):
        active = [t for t in trajs if not t.finished]
        if not active:
            break
        rationales = [""] * len(active)
        if uses_rationale:
            rationale_out = rationale_llm.generate(
                [[{"role": "user", "content": t.text}] for t in active],
                max_tokens=cfg.rationale_max_tokens,
                seed=cfg.seed,
            )
            rationales = [" ".join(c.texts[0].split()) if not c.error else "" for c in rationale_out]
        agent_prompts = []
        for t, r in zip(active, rationales):
            extra = (
                [{"role": "assistant", "content": f"Rationale: {r}"}] if cfg.heuristic == "rationalyst_explicit" else []
            )
            agent_prompts.append(t.messages + extra)
        if cfg.heuristic == "self_consistency":  # one sample per lane, each lane its own seed
            completions = [None] * len(active)
            for lane in range(lanes):
                idx = [i for i, t in enumerate(active) if t.lane == lane]
                if idx:
                    out = agent.generate(
                        [agent_prompts[i] for i in idx],
                        n=1,
                        temperature=cfg.temperature,
                        max_tokens=cfg.step_max_tokens,
                        seed=cfg.seed + 1000 * round_ + lane,
                    )
                    for i, c in zip(idx, out):
                        completions[i] = c
        else:
            completions = agent.generate(
                agent_prompts,
                n=1 if greedy else cfg.k,
                temperature=0.0 if greedy else cfg.temperature,
                max_tokens=cfg.step_max_tokens,
                seed=cfg.seed + 1000 * round_,
            )
        candidates = [[" ".join(x.split()) for x in c.texts] if not c.error else [] for c in completions]
        scores: list[list[float] | None] = [None] * len(active)
        if uses_rationale:
            flat = scorer.score_branches(
                [scoring_request(scorer, t.messages, r, cands) for t, r, cands in zip(active, rationales, candidates)]
            )
            pos = 0
            for i, cands in enumerate(candidates):
                scores[i] = [
                    s.mean if not s.error and s.logprobs else float("-inf") for s in flat[pos : pos + len(cands)]
                ]
                pos += len(cands)
        elif cfg.heuristic == "llm_judge":
            prompts = [
                [{"role": "user", "content": JUDGE_PROMPT.format(trajectory=t.text, step=c)}]
                for t, cands in zip(active, candidates)
                for c in cands
            ]
            ratings = agent.generate(prompts, max_tokens=8, seed=cfg.seed) if prompts else []
            pos = 0
            for i, cands in enumerate(candidates):
                scores[i] = [judge_score(r.texts[0]) if not r.error else 0.0 for r in ratings[pos : pos + len(cands)]]
                pos += len(cands)
        for t, r, cands, sc in zip(active, rationales, candidates, scores):
            if not cands or not any(cands):
                t.finished, t.stopped = True, "no_candidate"
                continue
            rng = random.Random(
                int.from_bytes(hashlib.sha256(f"{cfg.seed}/{t.qid}/{t.lane}/{round_}".encode()).digest()[:8], "big")
            )
            best = choose(cfg.heuristic, cands, sc, rng)
            step = cands[best]
            t.steps.append({"rationale": r or None, "candidates": cands, "scores": sc, "chosen": best})
            t.messages = t.messages + [{"role": "assistant", "content": step}]
            t.text = f"{t.text} {step}"
            if task.states_answer(step):
                t.finished, t.stopped = True, "answer"
    results = []
    for q in batch:
        mine = [t for t in trajs if t.qid == q["id"]]
        finals = [
            t.steps[-1]["candidates"][t.steps[-1]["chosen"]] if t.steps and t.stopped == "answer" else None
            for t in mine
        ]
        answers = [task.predict(f, q, "flexible") if f is not None else None for f in finals]
        strict = majority([task.predict(f, q, "strict") if f is not None else None for f in finals])
        prediction = majority(answers)
        record = {
            "id": q["id"],
            "question": q["question"],
            "gold": q["answer"],
            "prediction": prediction,
            "correct": task.is_correct(prediction, q["answer"]),
            "prediction_strict": strict,
            "correct_strict": task.is_correct(strict, q["answer"]),
            "heuristic": cfg.heuristic,
            "trajectory": mine[0].text,
            "steps": mine[0].steps,
            "n_steps": len(mine[0].steps),
            "stopped": mine[0].stopped,
        }
        if lanes > 1:
            record["lanes"] = [{"trajectory": t.text, "answer": a, "stopped": t.stopped} for t, a in zip(mine, answers)]
        results.append([record])
    return results


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(InferenceConfig, argv, __doc__)
    if shard_finished(cfg, "inference"):
        return 0
    if cfg.heuristic not in HEURISTICS:
        raise SystemExit(f"--heuristic must be one of {', '.join(HEURISTICS)}")
    if cfg.heuristic in ("rationalyst", "rationalyst_explicit") and not cfg.rationale_model:
        raise SystemExit(f"--heuristic {cfg.heuristic} needs --rationale-model")
    task, questions, context_of = load_questions(cfg)
    agent = make_backend(cfg)
    rationale_llm = scorer = None
    if cfg.heuristic in ("rationalyst", "rationalyst_explicit"):
        from dataclasses import replace

        rationale_llm = make_backend(
            replace(cfg, model=cfg.rationale_model, base_url=cfg.rationale_base_url or cfg.base_url)
        )
        scorer = (
            agent
            if not cfg.scorer_model or cfg.scorer_model == cfg.model
            else make_backend(replace(cfg, model=cfg.scorer_model, base_url=cfg.scorer_base_url or cfg.base_url))
        )
    return run_stage(
        "inference",
        cfg,
        lambda b: run_batch(cfg, task, context_of, agent, rationale_llm, scorer, b),
        records=iter(questions),
        batch_size=cfg.batch_size,
        total=len(questions),
    )


if __name__ == "__main__":
    sys.exit(main())

"""Rationale-guided stepwise inference (rationalyst.md section 6).

Each question is a trajectory: a few-shot chat (one user turn per question, one assistant turn
per step), the question's prefix "Question: ...\\nAnswer:", then the chosen steps. Each round:
  1. the rationale model writes a rationale for the trajectory so far (user turn = the text so far);
  2. the agent proposes k candidate next steps (k = 3, temperature 0.7);
  3. the heuristic picks one (HEURISTICS; the step scorers are common.scorers' registry):
       rationalyst           mean token log-prob of the candidate under the scorer, given the
                             trajectory and "Rationale: ..." (implicit supervision, 6.3 step 4)
       rationalyst_explicit  explicit supervision (6.5 world_model_content): RATIONALYST writes a rationale for
                             each candidate trajectory, its confidence (mean token log-prob) picks one, and
                             the chosen rationale is shown to the agent in the next round
       rationalyst_confidence the same choice, nothing shown (6.5 world_model_perplexity, older form)
       rationalyst_hint      the implicit choice above, its rationale also shown to the agent before it proposes
       cot                   plain few-shot chain of thought: one greedy full solution
       likelihood            the same scorer and frame without the rationale
       random                uniform choice (the paper's "without RATIONALYST")
       greedy                one candidate at temperature 0
       llm_judge             a judge model rates each partial solution (0-3 reward: the paper's verifier, 6.5)
       self_consistency      k independent sampled trajectories, majority vote over their answers
  4. stop when the chosen step states the answer ("The answer is"; MATH also "\\boxed"), or after `max_steps` (15).
The stop check runs on the chosen step itself (the reference checked one round late, 6.3).
A batch's questions advance together: each round is one batched call per model; the scorer computes the
trajectory + rationale once for the k candidates. With --streams N (the openai backend) N questions run
at once, each at its own pace, so the server is kept full across questions. Writes one record per question, with the answer
extracted from the final step both ways: `prediction`/`correct` (flexible) and `prediction_strict`/
`correct_strict`. The benchmarks (--dataset) are defined in common/tasks/rationalyst.

    python -m model_inference.inference --dataset gsm8k=../shared/data/gsm8k --heuristic rationalyst \\
        --rationale-model runs/rationalyst_model/final --output runs/inference/gsm8k-rationalyst
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from common.config import StageConfig, option, parse_config
from common.llm import LLMOptions
from common.registry import lookup
from common.scorers import Backends, Candidates, ScorerOptions, StepContext, StepScorer, best, make_scorer
from common.stage import run_stage, shard_finished
from common.tasks.rationalyst import choose_shots, context, parse_dataset


@dataclass
class InferenceConfig(StageConfig, LLMOptions, ScorerOptions):
    dataset: str = option(
        "gsm8k",
        "gsm8k, math, ecqa, hellaswag, proofwriter, arc or mmlu_pro (from the Hub), NAME=PATH "
        "(a local folder or file in the set's original format), or gsm_symbolic (offline "
        "GSM8K-style problems)",
    )
    split: str = option("", "split to answer (default: the task's; validation for ecqa and hellaswag, else test)")
    limit: int = option(0, "first N questions (0 = all)")
    heuristic: str = option(
        "rationalyst",
        "one of: rationalyst, rationalyst_explicit, rationalyst_confidence, rationalyst_hint, likelihood, random, greedy, cot, "
        "llm_judge, self_consistency (see the module docstring)",
    )
    k: int = option(3, "candidate steps per round (self_consistency: trajectories)")
    temperature: float = option(0.7, "agent sampling temperature for candidates")
    max_steps: int = option(15, "rounds per question at most")
    step_max_tokens: int = option(256, "tokens per step")
    shots: int = option(
        -1,
        "few-shot items; -1: the task's (6.2: gsm8k 9, math 5, ecqa 8, arc 8, proofwriter 3, "
        "mmlu_pro 5 of the question's category, hellaswag 4)",
    )
    batch_size: int = option(16, "questions per batch (the unit the journal commits)")
    streams: int = option(
        0,
        "questions in flight at once, each at its own pace (openai backend: a question's next round is sent as "
        "soon as its last returns; size with --concurrency, the requests in flight); 0: a batch's questions "
        "advance round by round together, one batched call per model (the hf backend's batching)",
    )
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
    one_turn = lookup(HEURISTICS, cfg.heuristic, "heuristic").whole if cfg.heuristic in HEURISTICS else False
    return task, questions, lambda q: context(task, q, shots, one_turn)


# ----------------------------------------------------------------------------- heuristics


@dataclass(frozen=True)
class Heuristic:
    """How a round proposes and chooses: `scorer` (common.scorers) picks among the k sampled candidates
    (None: take the only one); `greedy`: one candidate at temperature 0; `lanes`: k independent sampled
    trajectories and a majority vote over their answers; `show`: a rationale shown to the agent as an
    assistant turn "Rationale: r" ("prepared": the scorer's rationale for the trajectory, written before the
    agent proposes; "chosen": the rationale the chosen candidate was scored with, in the next round);
    `whole`: the agent writes the whole solution in one greedy turn."""

    scorer: str | None = None
    greedy: bool = False
    lanes: bool = False
    show: str = ""  # "prepared": the rationale for the trajectory, before proposing; "chosen": the chosen one's
    whole: bool = False  # one greedy full solution (plain chain of thought), the shots as one turn each


HEURISTICS = {
    "rationalyst": Heuristic("rationalyst"),  # implicit supervision (6.3)
    # 6.5 world_model_content: chosen by RATIONALYST's confidence, the chosen rationale then in the agent's prompt
    "rationalyst_explicit": Heuristic("rationale_confidence", show="chosen"),
    "rationalyst_confidence": Heuristic("rationale_confidence"),  # 6.5 world_model_perplexity (older form)
    "rationalyst_hint": Heuristic("rationalyst", show="prepared"),  # the implicit choice, its rationale shown too
    "cot": Heuristic(greedy=True, whole=True),  # plain few-shot chain of thought: one greedy full solution
    "likelihood": Heuristic("likelihood"),  # the same scorer without a rationale: what the rationale adds
    "random": Heuristic("random"),  # the paper's "without RATIONALYST"
    "greedy": Heuristic(greedy=True),
    "llm_judge": Heuristic("llm_judge"),  # a verifier baseline (6.5)
    "self_consistency": Heuristic(lanes=True),
}


def majority(answers: list[str | None]) -> str | None:
    """Most frequent non-empty answer; ties go to the one reached first."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == top)


# ----------------------------------------------------------------------------- the loop


@dataclass
class Trajectory:
    qid: str
    lane: int
    context: StepContext  # the chat before any step (few-shot + user(prefix)) and the chosen steps
    steps: list[dict]  # per round: rationale, candidates, scores, chosen
    finished: bool = False
    stopped: str = "step_limit"
    shown: str | None = None  # show="chosen": the rationale to show the agent in the next round


def propose(cfg: InferenceConfig, heuristic: Heuristic, agent, trajs: list[Trajectory], prompts, round_: int):
    """The agent's candidates for each trajectory: k sampled (one per lane for self-consistency, each lane
    its own seed), or one greedy."""
    seed = cfg.seed + 1000 * round_
    if heuristic.greedy:
        budget = cfg.step_max_tokens * (cfg.max_steps if heuristic.whole else 1)
        return agent.generate(prompts, n=1, temperature=0.0, max_tokens=budget, seed=seed)
    if not heuristic.lanes:
        return agent.generate(prompts, n=cfg.k, temperature=cfg.temperature, max_tokens=cfg.step_max_tokens, seed=seed)
    completions = [None] * len(trajs)
    for lane in range(cfg.k):
        idx = [i for i, t in enumerate(trajs) if t.lane == lane]
        if idx:
            out = agent.generate(
                [prompts[i] for i in idx],
                n=1,
                temperature=cfg.temperature,
                max_tokens=cfg.step_max_tokens,
                seed=seed + lane,
            )
            for i, c in zip(idx, out):
                completions[i] = c
    return completions


def advance(
    cfg: InferenceConfig, heuristic: Heuristic, task, agent, scorer: StepScorer | None, trajs: list[Trajectory]
):
    """Run the trajectories' rounds to the end: each round is one batched call per model over the ones
    still going. A trajectory's round r is its own r-th step, so its seeds do not depend on what else runs."""
    for round_ in range(cfg.max_steps):
        active = [t for t in trajs if not t.finished]
        if not active:
            break
        prepared = scorer.prepare([t.context for t in active]) if scorer else [None] * len(active)
        shown = {"prepared": prepared, "chosen": [t.shown for t in active]}.get(heuristic.show, [None] * len(active))
        prompts = [
            t.context.chat() + ([{"role": "assistant", "content": f"Rationale: {r}"}] if r is not None else [])
            for t, r in zip(active, shown)
        ]
        completions = propose(cfg, heuristic, agent, active, prompts, round_)
        candidates = [[" ".join(x.split()) for x in c.texts] if not c.error else [] for c in completions]
        ready = [i for i, c in enumerate(candidates) if any(c)]
        scores: list[list[float] | None] = [None] * len(active)
        per_candidate: list[list[str] | None] = [None] * len(active)
        if scorer and ready:
            batch_scores, rationales = scorer.score_with_rationales(
                [Candidates(active[i].context, candidates[i]) for i in ready], [prepared[i] for i in ready]
            )
            for k, (i, sc) in enumerate(zip(ready, batch_scores)):
                scores[i] = sc
                if rationales is not None:
                    per_candidate[i] = rationales[k]
        for t, r, cands, sc, rats in zip(active, prepared, candidates, scores, per_candidate):
            if not any(cands):
                t.finished, t.stopped = True, "no_candidate"
                continue
            chosen = best(sc) if sc is not None else 0
            step = cands[chosen]
            rationale = rats[chosen] if rats is not None else r
            t.steps.append({"rationale": rationale or None, "candidates": cands, "scores": sc, "chosen": chosen})
            t.context = replace(t.context, steps=[*t.context.steps, step])
            t.shown = rationale
            if task.states_answer(step):
                t.finished, t.stopped = True, "answer"
            elif heuristic.whole:  # the one full solution, whatever its last words
                t.finished, t.stopped = True, "solution"


def run_batch(
    cfg: InferenceConfig,
    task,
    context_of: Callable[[dict], list[dict]],
    agent,
    scorer: StepScorer | None,
    batch: list[dict],
) -> list:
    """With `streams` 0, the batch's questions advance round by round together (one batched call per model
    and round: the hf backend's batching). With `streams` N, N questions run at once, each on its own
    thread and at its own pace: a question's next round is sent as soon as its last returns, so a server
    is never left waiting on the slowest generation of a round (the openai backend)."""
    heuristic = lookup(HEURISTICS, cfg.heuristic, "heuristic")
    lanes = cfg.k if heuristic.lanes else 1
    groups = [
        [Trajectory(q["id"], lane, StepContext(f"{q['id']}/{lane}", context_of(q)), []) for lane in range(lanes)]
        for q in batch
    ]
    if cfg.streams > 0:
        with ThreadPoolExecutor(max_workers=min(cfg.streams, len(groups)), thread_name_prefix="question") as pool:
            list(pool.map(lambda group: advance(cfg, heuristic, task, agent, scorer, group), groups))
    else:
        advance(cfg, heuristic, task, agent, scorer, [t for group in groups for t in group])
    return [[question_record(cfg, task, q, mine, lanes)] for q, mine in zip(batch, groups)]


def question_record(cfg: InferenceConfig, task, q: dict, mine: list[Trajectory], lanes: int) -> dict:
    finals = [
        t.steps[-1]["candidates"][t.steps[-1]["chosen"]] if t.steps and t.stopped in ("answer", "solution") else None
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
        "trajectory": mine[0].context.text,
        "steps": mine[0].steps,
        "n_steps": len(mine[0].steps),
        "stopped": mine[0].stopped,
    }
    if lanes > 1:
        record["lanes"] = [
            {"trajectory": t.context.text, "answer": a, "stopped": t.stopped} for t, a in zip(mine, answers)
        ]
    return record


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(InferenceConfig, argv, __doc__)
    if shard_finished(cfg, "inference"):
        return 0
    try:
        heuristic = lookup(HEURISTICS, cfg.heuristic, "heuristic")
    except ValueError as exc:
        raise SystemExit(f"--heuristic: {exc}") from None
    task, questions, context_of = load_questions(cfg)
    models = Backends(cfg)
    scorer = make_scorer(heuristic.scorer, cfg, models) if heuristic.scorer else None
    return run_stage(
        "inference",
        cfg,
        lambda b: run_batch(cfg, task, context_of, models.agent, scorer, b),
        records=iter(questions),
        batch_size=cfg.batch_size,
        total=len(questions),
    )


if __name__ == "__main__":
    sys.exit(main())

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
  4. stop when the chosen step states the answer ("The answer is"), or after `max_steps` (15).
The stop check runs on the chosen step itself (the reference checked one round late, 6.3).
All questions advance together: each round is one batched call per model; the scorer computes the
trajectory + rationale once for the k candidates. Writes one record per question.

    python -m model_inference.inference --dataset gsm8k=../shared/data/gsm8k --heuristic rationalyst \\
        --rationale-model runs/rationalyst_model/final --output runs/inference/gsm8k-rationalyst
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass

from common.config import StageConfig, option, parse_config
from common.llm import LLMOptions, make_backend
from common.llm.base import Branches
from common.stage import run_stage, shard_finished
from common.tasks import gsm8k

HEURISTICS = ("rationalyst", "rationalyst_explicit", "random", "greedy", "llm_judge", "self_consistency")
END_PHRASES = ("the answer is", "the correct answer is")
# 6.3 step 4: the scorer's system message (in this project's words)
SCORER_SYSTEM = ("Continue the text consistently with what precedes it and with the rationales, which start "
                 "with 'Rationale: '.")
JUDGE_PROMPT = ("Here is a problem and a partial solution.\n\n{trajectory}\n\nProposed next step: {step}\n\n"
                "How likely is this step to be correct and useful, on a scale from 1 to 10? Reply with the number only.")


@dataclass
class InferenceConfig(StageConfig, LLMOptions):
    dataset: str = option("gsm8k", "gsm8k (Hub), gsm8k=PATH (original-format folder or file), or gsm_symbolic "
                                   "(offline GSM8K-style problems)")
    split: str = option("test", "split to answer")
    limit: int = option(0, "first N questions (0 = all)")
    heuristic: str = option("rationalyst", "one of: " + ", ".join(HEURISTICS))
    k: int = option(3, "candidate steps per round (self_consistency: trajectories)")
    temperature: float = option(0.7, "agent sampling temperature for candidates")
    max_steps: int = option(15, "rounds per question at most")
    step_max_tokens: int = option(256, "tokens per step")
    shots: int = option(9, "few-shot examples (6.2: 9 for GSM8K)")
    rationale_model: str = option("", "the fine-tuned rationale model (registry name, path or served name)")
    rationale_base_url: str = option("", "openai backend: its server (default: base_url)")
    rationale_max_tokens: int = option(128, "tokens per rationale (the reference allowed 1000)")
    scorer_model: str = option("", "the scorer (default: the agent model; the paper used LLaMA-3-8B-Instruct)")
    scorer_base_url: str = option("", "openai backend: its server (default: base_url)")
    batch_size: int = option(16, "questions advanced together")
    seed: int = option(14, "seed (the reference's)")


# ----------------------------------------------------------------------------- data and prompts

def load_questions(cfg: InferenceConfig) -> tuple[list[dict], list[dict]]:
    """(questions, few-shot pool), each {id, question, solution, answer}."""
    name, _, path = cfg.dataset.partition("=")
    if name == "gsm_symbolic":
        import reasoning_gym
        def gen(size, seed, tag):
            return [{"id": f"gsm_symbolic-{tag}-{i}", "question": x["question"], "solution": x["metadata"]["answer_cot"],
                     "answer": gsm8k.extract_answer(x["metadata"]["answer_cot"], "strict")}
                    for i, x in enumerate(reasoning_gym.create_dataset("gsm_symbolic", size=size, seed=seed))]
        return gen(cfg.limit or 100, cfg.seed, cfg.split), gen(max(cfg.shots, 1) * 4, cfg.seed + 1, "shots")
    if name != "gsm8k":
        raise SystemExit(f"--dataset {name}: only gsm8k and gsm_symbolic so far")
    questions = gsm8k.load(cfg.split, path or None, cfg.limit or None)
    return questions, gsm8k.load("train", path or None, 200)


def shot_messages(pool: list[dict], n: int, seed: int) -> list[dict]:
    """6.2: user = "Question: q\\nAnswer:", one assistant turn per solution line; '####' -> 'The answer is:'."""
    messages = []
    for ex in random.Random(seed).sample(pool, min(n, len(pool))):
        messages.append({"role": "user", "content": f"Question: {ex['question']}\nAnswer:"})
        for line in gsm8k.strip_calculator(ex["solution"]).replace("####", "The answer is:").split("\n"):
            line = line.strip()
            if line:
                messages.append({"role": "assistant", "content": line if line.endswith(".") else line + "."})
    return messages


def states_answer(step: str) -> bool:
    low = step.lower()
    return any(p in low for p in END_PHRASES)


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
    messages: list[dict]       # few-shot + user(prefix) + assistant(step)...
    text: str                  # prefix + chosen steps joined by spaces (the rationale model's input)
    steps: list[dict]
    done: bool = False
    stopped: str = "step_limit"


def run_batch(cfg: InferenceConfig, agent, rationale_llm, scorer, shots: list[dict], batch: list[dict]) -> list:
    lanes = cfg.k if cfg.heuristic == "self_consistency" else 1
    trajs = []
    for q in batch:
        prefix = f"Question: {q['question']}\nAnswer:"
        for lane in range(lanes):
            trajs.append(Trajectory(q["id"], lane, shots + [{"role": "user", "content": prefix}], prefix, []))
    uses_rationale = cfg.heuristic in ("rationalyst", "rationalyst_explicit")
    greedy = cfg.heuristic == "greedy"
    for round_ in range(cfg.max_steps):
        active = [t for t in trajs if not t.done]
        if not active:
            break
        rationales = [""] * len(active)
        if uses_rationale:
            done = rationale_llm.generate([[{"role": "user", "content": t.text}] for t in active],
                                          max_tokens=cfg.rationale_max_tokens, seed=cfg.seed)
            rationales = [" ".join(c.texts[0].split()) if not c.error else "" for c in done]
        agent_prompts = []
        for t, r in zip(active, rationales):
            extra = [{"role": "assistant", "content": f"Rationale: {r}"}] if cfg.heuristic == "rationalyst_explicit" else []
            agent_prompts.append(t.messages + extra)
        if cfg.heuristic == "self_consistency":   # one sample per lane, each lane its own seed
            done = [None] * len(active)
            for lane in range(lanes):
                idx = [i for i, t in enumerate(active) if t.lane == lane]
                if idx:
                    out = agent.generate([agent_prompts[i] for i in idx], n=1, temperature=cfg.temperature,
                                         max_tokens=cfg.step_max_tokens, seed=cfg.seed + 1000 * round_ + lane)
                    for i, c in zip(idx, out):
                        done[i] = c
        else:
            done = agent.generate(agent_prompts, n=1 if greedy else cfg.k, temperature=0.0 if greedy else cfg.temperature,
                                  max_tokens=cfg.step_max_tokens, seed=cfg.seed + 1000 * round_)
        candidates = [[" ".join(x.split()) for x in c.texts] if not c.error else [] for c in done]
        scores: list[list[float] | None] = [None] * len(active)
        if uses_rationale:
            flat = scorer.score_branches([scoring_request(scorer, t.messages, r, cands)
                                          for t, r, cands in zip(active, rationales, candidates)])
            pos = 0
            for i, cands in enumerate(candidates):
                scores[i] = [s.mean if not s.error and s.logprobs else float("-inf") for s in flat[pos:pos + len(cands)]]
                pos += len(cands)
        elif cfg.heuristic == "llm_judge":
            prompts = [[{"role": "user", "content": JUDGE_PROMPT.format(trajectory=t.text, step=c)}]
                       for t, cands in zip(active, candidates) for c in cands]
            ratings = agent.generate(prompts, max_tokens=8, seed=cfg.seed) if prompts else []
            pos = 0
            for i, cands in enumerate(candidates):
                scores[i] = [judge_score(r.texts[0]) if not r.error else 0.0 for r in ratings[pos:pos + len(cands)]]
                pos += len(cands)
        for t, r, cands, sc in zip(active, rationales, candidates, scores):
            if not cands or not any(cands):
                t.done, t.stopped = True, "no_candidate"
                continue
            rng = random.Random(int.from_bytes(hashlib.sha256(f"{cfg.seed}/{t.qid}/{t.lane}/{round_}".encode())
                                               .digest()[:8], "big"))
            best = choose(cfg.heuristic, cands, sc, rng)
            step = cands[best]
            t.steps.append({"rationale": r or None, "candidates": cands, "scores": sc, "chosen": best})
            t.messages = t.messages + [{"role": "assistant", "content": step}]
            t.text = f"{t.text} {step}"
            if states_answer(step):
                t.done, t.stopped = True, "answer"
    results = []
    for q in batch:
        mine = [t for t in trajs if t.qid == q["id"]]
        answers = [gsm8k.extract_answer(t.steps[-1]["candidates"][t.steps[-1]["chosen"]], "flexible")
                   if t.steps and t.stopped == "answer" else None for t in mine]
        prediction = majority(answers)
        record = {"id": q["id"], "question": q["question"], "gold": q["answer"], "prediction": prediction,
                  "correct": gsm8k.is_correct(prediction, q["answer"]), "heuristic": cfg.heuristic,
                  "trajectory": mine[0].text, "steps": mine[0].steps, "n_steps": len(mine[0].steps),
                  "stopped": mine[0].stopped}
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
    questions, pool = load_questions(cfg)
    shots = shot_messages(pool, cfg.shots, cfg.seed)
    agent = make_backend(cfg)
    rationale_llm = scorer = None
    if cfg.heuristic in ("rationalyst", "rationalyst_explicit"):
        from dataclasses import replace
        rationale_llm = make_backend(replace(cfg, model=cfg.rationale_model, base_url=cfg.rationale_base_url or cfg.base_url))
        scorer = agent if not cfg.scorer_model or cfg.scorer_model == cfg.model else make_backend(
            replace(cfg, model=cfg.scorer_model, base_url=cfg.scorer_base_url or cfg.base_url))
    return run_stage("inference", cfg, lambda b: run_batch(cfg, agent, rationale_llm, scorer, shots, b),
                     records=iter(questions), batch_size=cfg.batch_size, total=len(questions))


if __name__ == "__main__":
    sys.exit(main())

"""Reasoning solutions with labelled steps, for measuring step scorers (model_inference.verify_steps).

Every loader returns solutions in one layout:
  {"id", "group" (the question; best-of-N compares the solutions of one group), "question", "steps",
   "labels" (per step: 1 correct, 0 wrong, None unknown; None when no step is labelled),
   "first_error" (0-based index of the first wrong step, -1 when all are right, None when unknown),
   "correct" (the whole solution, where known), "answer" (its final answer, where extracted),
   "gold" (the question's answer), "pair"/"position" (perturbed sets: the gold solution and its copy with
   step `position` corrupted share `pair`)}

Data (`--data NAME=PATH` of the stage; NAME alone where no file is needed):
  prmbench          PRMBench jsonl: `modified_process` with `error_steps` (1-based); steps after an error are
                    labelled as the benchmark labels them (wrong only where listed)
  processbench      ProcessBench (Hub `Qwen/ProcessBench`, splits gsm8k/math/olympiadbench/omnimath, or a
                    local jsonl/json of its rows): `problem`, `steps`, `label` = 0-based first wrong step or -1;
                    steps after the first wrong one are unknown
  prm800k           PRM800K phase-2 jsonl: the chosen completion of each step, rated -1/0/1; -1 is wrong,
                    0 (no progress) and 1 are not (the usual binary reading); labelling stops at the first error
  gsm8k_solutions   OpenAI's GSM8K example model solutions (four generators per question with `is_correct`):
                    best-of-N, no step labels
  perturbed:TASK    gold solutions of a GSM8K-style task (gsm8k=PATH, gsm_symbolic) or of REFINER's math word
                    problems (perturbed:mwp=PATH), each with a copy in which one step is corrupted by REFINER's
                    rules (a number replaced by another, or an operator by another), position known, seeded
A malformed line errors with file and line (common.tasks.records).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from pathlib import Path

from common.registry import lookup
from common.tasks.records import load_records

PROCESSBENCH_HUB, PROCESSBENCH_SPLITS = "Qwen/ProcessBench", ("gsm8k", "math", "olympiadbench", "omnimath")
NUMBER_RE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?!\w|\.\d)")
OPERATOR_RE = re.compile(r"(?<=[\d)\s])([+\-*/x×÷])(?=[\s(\d$])")
OPERATORS = ("+", "-", "*", "/")


def solution(ident: str, group: str, question: str, steps: list[str], labels=None, **extra) -> dict:
    steps = [" ".join(str(s).split()) for s in steps]
    if not steps or not all(steps):
        raise ValueError("a solution needs at least one step and no empty step")
    if labels is not None and len(labels) != len(steps):
        raise ValueError(f"{len(labels)} labels for {len(steps)} steps")
    first_error = None
    if labels is not None:
        first_error = next((i for i, lab in enumerate(labels) if lab == 0), -1)
        if first_error == -1 and any(lab is None for lab in labels):
            first_error = None
    out = {
        "id": ident,
        "group": group,
        "question": question,
        "steps": steps,
        "labels": labels,
        "first_error": first_error,
        "correct": None,
        "answer": None,
        "gold": None,
        "pair": None,
        "position": None,
    }
    out.update(extra)
    if out["correct"] is None and first_error is not None:
        out["correct"] = first_error == -1
    return out


# ----------------------------------------------------------------------------- benchmarks


def load_prmbench(path: str | Path, on_bad_record: str = "error", stats=None) -> list[dict]:
    def build(r: dict, i: int) -> dict:
        steps, errors = r["modified_process"], {int(e) for e in r["error_steps"]}
        if any(e < 1 for e in errors):
            raise ValueError(f"error_steps {sorted(errors)} are 1-based")
        # 11 of the 394 subset items list error steps past the end of their process: those are dropped
        # (counted in `dropped_error_steps`); the steps that exist keep their labels
        labels = [0 if k + 1 in errors else 1 for k in range(len(steps))]
        dropped = sorted(e for e in errors if e > len(steps))
        ident = f"prmbench-{i}"  # `idx` repeats within the subset
        return solution(
            ident,
            ident,
            r.get("modified_question") or r["question"],
            steps,
            labels,
            kind=r.get("classification"),
            dropped_error_steps=dropped,
            source_id=r.get("idx"),
        )

    return load_records(path, build, ("modified_process", "error_steps"), on_bad_record, stats)


def _processbench_row(r: dict, i: int, stem: str) -> dict:
    steps, first = list(r["steps"]), int(r["label"])
    if not -1 <= first < len(steps):
        raise ValueError(f"label {first} outside -1..{len(steps) - 1} (0-based first wrong step, -1: none)")
    labels = [1] * len(steps) if first == -1 else [1] * first + [0] + [None] * (len(steps) - first - 1)
    ident = str(r.get("id", f"{stem}-{i}"))
    return solution(ident, ident, r["problem"], steps, labels, correct=r.get("final_answer_correct"))


def load_processbench(path: str | Path | None = None, on_bad_record: str = "error", stats=None) -> list[dict]:
    if path is None or str(path) in PROCESSBENCH_SPLITS:
        from datasets import load_dataset

        splits = [str(path)] if path else list(PROCESSBENCH_SPLITS)
        return [
            _processbench_row(dict(r), i, s)
            for s in splits
            for i, r in enumerate(load_dataset(PROCESSBENCH_HUB, split=s))
        ]
    stem = Path(path).stem
    return load_records(
        path, lambda r, i: _processbench_row(r, i, stem), ("problem", "steps", "label"), on_bad_record, stats
    )


def load_prm800k(path: str | Path, on_bad_record: str = "error", stats=None) -> list[dict]:
    def build(r: dict, i: int) -> dict:
        steps, labels = [], []
        for step in r["label"]["steps"]:
            chosen, human = step.get("chosen_completion"), step.get("human_completion")
            if chosen is not None:
                completion = step["completions"][chosen]
                text, rating = completion["text"], completion.get("rating")
            elif human:
                text, rating = human if isinstance(human, str) else human["text"], 1
            else:  # phase 2: the step where the labeller found the error (or gave up): the first completion
                completion = step["completions"][0]
                text, rating = completion["text"], completion.get("rating")
            steps.append(text)
            labels.append(None if rating is None else 0 if rating < 0 else 1)
            if rating is not None and rating < 0:
                break  # phase 2 labels stop at the first error
        q = r["question"]
        return solution(
            f"prm800k-{i}",
            q["problem"],
            q["problem"],
            steps,
            labels,
            gold=q.get("ground_truth_answer"),
            finish_reason=r["label"].get("finish_reason"),
        )

    return load_records(path, build, ("question", "label"), on_bad_record, stats)


def load_gsm8k_solutions(path: str | Path, on_bad_record: str = "error", stats=None) -> list[dict]:
    """Best-of-N: every generator's solution of a question, one group per question, steps = solution lines
    (calculator notes removed), the final `A: N` line giving the answer."""
    from common.tasks.rationalyst import gsm8k

    solutions: list[dict] = []

    def build(r: dict, i: int) -> list[dict]:
        gold = _final_answer(r["ground_truth"])
        out = []
        for name, sol in r.items():
            if isinstance(sol, dict) and "solution" in sol:
                lines = [x for x in gsm8k.strip_calculator(sol["solution"]).split("\n") if x.strip()]
                out.append(
                    solution(
                        f"q{i}-{name}",
                        f"q{i}",
                        r["question"],
                        lines,
                        None,
                        correct=bool(sol["is_correct"]),
                        answer=_final_answer(sol["solution"]),
                        gold=gold,
                        generator=name,
                    )
                )
        if not out:
            raise ValueError("no generator solutions ({name: {solution, is_correct}})")
        return out

    for group in load_records(path, build, ("question", "ground_truth"), on_bad_record, stats):
        solutions.extend(group)
    return solutions


def _final_answer(text: str) -> str | None:
    from common.tasks.answers import normalize_number

    m = re.search(r"(?:^|\n)\s*(?:A:|####)\s*([^\n]+)\s*$", text.strip())
    return normalize_number(m.group(1)) if m else None


# ----------------------------------------------------------------------------- perturbed gold solutions


def _rng(seed: int, ident: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(f"{seed}\x00{ident}".encode()).digest()[:8], "big"))


def corrupt_text_step(step: str, question: str, rng: random.Random) -> tuple[str, str] | None:
    """REFINER's two rules (refiner.md 2.2) on a written step: a number replaced by another of the problem's
    numbers (or a nearby one when the problem has none other), or an operator by another. (kind, new step),
    or None when the step has neither."""
    options = []
    numbers = NUMBER_RE.findall(question)
    for m in NUMBER_RE.finditer(step):
        others = sorted({n for n in numbers if float(n) != float(m.group())})
        replacement = rng.choice(others) if others else str(int(float(m.group())) + rng.choice([1, 2, 3, 10]))
        options.append(("numbers", step[: m.start()] + replacement + step[m.end() :]))
    for m in OPERATOR_RE.finditer(step):
        op = {"x": "*", "×": "*", "÷": "/"}.get(m.group(1), m.group(1))
        new = rng.choice([o for o in OPERATORS if o != op])
        options.append(("operator", step[: m.start()] + new + step[m.end() :]))
    return rng.choice(options) if options else None


def perturbed_pair(ident: str, question: str, steps: list[str], corrupt: Callable, seed: int, **extra) -> list[dict]:
    """The gold solution and a copy with one step corrupted (chosen among the steps the rule applies to,
    the final answer step excluded when another is possible), position known."""
    rng = _rng(seed, ident)
    candidates = []
    for k, step in enumerate(steps):
        changed = corrupt(step, question, _rng(seed, f"{ident}/{k}"))
        if changed and changed[1] != step:
            candidates.append((k, *changed))
    if not candidates:
        return []
    inner = [c for c in candidates if c[0] < len(steps) - 1] or candidates
    k, kind, wrong = rng.choice(inner)
    labels = [1] * k + [0] + [None] * (len(steps) - k - 1)
    gold = solution(f"{ident}-gold", ident, question, steps, [1] * len(steps), pair=ident, position=k, **extra)
    bad = solution(
        f"{ident}-{kind}",
        ident,
        question,
        steps[:k] + [wrong] + steps[k + 1 :],
        labels,
        pair=ident,
        position=k,
        kind=kind,
        **extra,
    )
    return [gold, bad]


def load_perturbed(task_spec: str, seed: int = 0, limit: int = 0) -> list[dict]:
    """`perturbed:gsm8k=PATH`, `perturbed:gsm_symbolic` (GSM8K-style worked solutions, one step per line as
    in the few-shot turns) or `perturbed:mwp=PATH` (REFINER's formulas, one step per `#k: op ( a, b )`)."""
    name, _, path = task_spec.partition("=")
    if name == "mwp":
        from common.tasks.refiner import mwp

        problems = mwp.load_examples(path)
        out = []
        for p in problems[:limit] if limit else problems:
            steps = [s.strip() for s in mwp.normalize(p["z"]).replace("EOS", "").split("|") if s.strip()]
            if len(steps) > 1 or steps[0].startswith("#"):
                out += perturbed_pair(p["id"], p["x"], steps, _corrupt_formula_step, seed, gold=p["answer"])
        return out
    from common.tasks.rationalyst import get_task

    task = get_task(name)
    examples = task.load("test", path or None, limit or None)
    out = []
    for ex in examples:
        out += perturbed_pair(ex["id"], ex["question"], task.shot_steps(ex), corrupt_text_step, seed, gold=ex["answer"])
    return out


def _corrupt_formula_step(step: str, question: str, rng: random.Random) -> tuple[str, str] | None:
    """One `#k: op ( a, b )` step under REFINER's numbers / operator perturbations (common.tasks.refiner.mwp)."""
    m = re.fullmatch(r"(#\d+:)\s*([a-z]+)\s*\(\s*([^,]+?)\s*,\s*([^)]+?)\s*\)", step)
    if not m:
        return None
    head, op, a, b = m.groups()
    from common.tasks.refiner.mwp import OPS

    n_numbers = 1 + max((int(x[6:]) for x in re.findall(r"number\d+", question)), default=1)
    kind = rng.choice(["numbers", "operator"])
    if kind == "operator":
        op = rng.choice([o for o in OPS if o != op])
    else:
        slots = [i for i, x in enumerate((a, b)) if x.startswith("number")]
        if not slots:
            op, kind = rng.choice([o for o in OPS if o != op]), "operator"
        else:
            side = rng.choice(slots)
            old = (a, b)[side]
            new = rng.choice([f"number{n}" for n in range(max(n_numbers, 2)) if f"number{n}" != old])
            a, b = (new, b) if side == 0 else (a, new)
    return kind, f"{head} {op} ( {a}, {b} )"


# ----------------------------------------------------------------------------- the registry


DATA: dict[str, Callable[..., list[dict]]] = {
    "prmbench": lambda path, seed, limit: load_prmbench(path),
    "processbench": lambda path, seed, limit: load_processbench(path),
    "prm800k": lambda path, seed, limit: load_prm800k(path),
    "gsm8k_solutions": lambda path, seed, limit: load_gsm8k_solutions(path),
}


def load(spec: str, seed: int = 0, limit: int = 0) -> list[dict]:
    """Solutions of a data spec (module docstring); `limit` keeps the first N (questions, for best-of-N)."""
    if spec.startswith("perturbed:"):
        return load_perturbed(spec[len("perturbed:") :], seed, limit)
    name, _, path = spec.partition("=")
    rows = lookup(DATA, name.strip(), "step data")(path.strip() or None, seed, limit)
    if limit:
        groups = list(dict.fromkeys(r["group"] for r in rows))[:limit]
        keep = set(groups)
        rows = [r for r in rows if r["group"] in keep]
    return rows

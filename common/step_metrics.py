"""Metrics of a step scorer on scored solutions (model_inference.verify_steps records: the common.tasks.steps
layout plus "scores", one per step, higher = better, and "score_scale", "log" or "linear").

  step_auroc        AUROC of the step scores against the step labels (1 correct, 0 wrong; unknown left out)
  processbench_f1   ProcessBench's F1 (Zheng et al. 2024): the predicted first error is the first step scored
                    below a threshold (-1 when none is); the harmonic mean of the accuracy on erroneous
                    solutions (the first error named exactly) and on correct ones (no error named)
  step_f1           PRMBench's per-class step F1 (Song et al. 2025): steps below the threshold are called
                    wrong; F1 of the correct class, of the erroneous class, and their mean
  pairwise          perturbed sets: the gold step scored above its corrupted copy at the same position (ties
                    count half); no position or length shortcut can game it
  best_of_n         per question, the solution with the best aggregated step score (min, last, mean, product:
                    the sum for log-probabilities); its accuracy, beside random choice, majority vote over the
                    final answers and the oracle (any correct)
The thresholds are chosen on a dev split of the questions (`split_dev`) and applied to the rest.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

AGGREGATIONS = ("min", "last", "mean", "product")


def split_dev(solutions: Sequence[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(dev, test) by question: a seeded hash of the group, so the split is stable and keeps a question's
    solutions together."""

    def is_dev(group: str) -> bool:
        h = hashlib.sha256(f"{seed}\x00{group}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64 < fraction

    dev = [s for s in solutions if is_dev(str(s["group"]))]
    return dev, [s for s in solutions if not is_dev(str(s["group"]))]


def labelled_steps(solutions: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = [], []
    for s in solutions:
        for score, label in zip(s["scores"], s["labels"] or []):
            if label is not None:
                scores.append(score)
                labels.append(label)
    return np.array(scores, dtype=float), np.array(labels, dtype=int)


def step_auroc(solutions: Sequence[dict]) -> float:
    from sklearn.metrics import roc_auc_score

    scores, labels = labelled_steps(solutions)
    if len(set(labels.tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(labels, np.nan_to_num(scores, neginf=-1e30, posinf=1e30)))


def predicted_first_error(scores: Sequence[float], threshold: float) -> int:
    return next((i for i, s in enumerate(scores) if s < threshold), -1)


def processbench_f1(solutions: Sequence[dict], threshold: float) -> float:
    known = [s for s in solutions if s.get("first_error") is not None]
    wrong = [s for s in known if s["first_error"] >= 0]
    right = [s for s in known if s["first_error"] == -1]
    if not wrong or not right:
        return float("nan")
    acc_wrong = np.mean([predicted_first_error(s["scores"], threshold) == s["first_error"] for s in wrong])
    acc_right = np.mean([predicted_first_error(s["scores"], threshold) == -1 for s in right])
    return float(2 * acc_wrong * acc_right / (acc_wrong + acc_right)) if acc_wrong + acc_right else 0.0


def step_f1(solutions: Sequence[dict], threshold: float) -> dict[str, float]:
    scores, labels = labelled_steps(solutions)
    called_right = scores >= threshold

    def f1(pred: np.ndarray, gold: np.ndarray) -> float:
        tp = float((pred & gold).sum())
        return 2 * tp / (pred.sum() + gold.sum()) if pred.sum() + gold.sum() else float("nan")

    right, wrong = f1(called_right, labels == 1), f1(~called_right, labels == 0)
    return {"f1_correct": right, "f1_erroneous": wrong, "f1_mean": (right + wrong) / 2}


def best_threshold(solutions: Sequence[dict], objective) -> float:
    """The threshold among the dev scores' quantiles that maximises `objective(solutions, t)`."""
    scores = np.array([x for s in solutions for x in s["scores"] if not math.isinf(x)], dtype=float)
    if len(scores) == 0:
        return 0.0
    candidates = np.unique(np.quantile(scores, np.linspace(0, 1, 101)))
    candidates = np.concatenate([candidates, [candidates[-1] + 1e-9]])  # "nothing is below": all called right
    values = [objective(solutions, t) for t in candidates]
    values = [-1.0 if math.isnan(v) else v for v in values]
    return float(candidates[int(np.argmax(values))])


def pairs(solutions: Sequence[dict]) -> list[tuple[float, float]]:
    """(gold step's score, corrupted step's score) per perturbed pair present in the run."""
    by_pair: dict[str, dict[str, dict]] = defaultdict(dict)
    for s in solutions:
        if s.get("pair") is not None:
            by_pair[s["pair"]]["gold" if s["first_error"] == -1 else "bad"] = s
    out = []
    for p in by_pair.values():
        if "gold" in p and "bad" in p:
            k = p["bad"]["position"]
            out.append((p["gold"]["scores"][k], p["bad"]["scores"][k]))
    return out


def pairwise_accuracy(pair_scores: Sequence[tuple[float, float]]) -> float:
    if not pair_scores:
        return float("nan")
    return float(np.mean([1.0 if g > b else 0.5 if g == b else 0.0 for g, b in pair_scores]))


def aggregate(scores: Sequence[float], how: str, scale: str) -> float:
    if not scores:
        return -math.inf
    if how == "min":
        return min(scores)
    if how == "last":
        return scores[-1]
    if how == "mean":
        return sum(scores) / len(scores)
    if how == "product":
        return sum(scores) if scale == "log" else math.prod(scores)
    raise ValueError(f"unknown aggregation {how!r}; known: {', '.join(AGGREGATIONS)}")


def questions(solutions: Sequence[dict]) -> list[list[dict]]:
    """Solutions grouped by question, for best-of-N (groups of one are left out)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for s in solutions:
        if s.get("correct") is not None:
            groups[str(s["group"])].append(s)
    return [g for g in groups.values() if len(g) > 1]


def best_of_n(groups: Sequence[list[dict]], how: str) -> float:
    if not groups:
        return float("nan")
    hits = []
    for g in groups:
        values = [aggregate(s["scores"], how, s.get("score_scale", "linear")) for s in g]
        hits.append(bool(g[int(np.argmax(values))]["correct"]))
    return float(np.mean(hits))


def random_choice(groups: Sequence[list[dict]]) -> float:
    """The expected accuracy of picking one solution uniformly."""
    return float(np.mean([np.mean([bool(s["correct"]) for s in g]) for g in groups])) if groups else float("nan")


def majority_vote(groups: Sequence[list[dict]]) -> float:
    """The most frequent final answer (ties: the one reached first) against the gold."""
    if not groups:
        return float("nan")
    hits = []
    for g in groups:
        answers = [s.get("answer") for s in g if s.get("answer") is not None]
        if not answers:
            hits.append(False)
            continue
        counts = Counter(answers)
        top = max(counts.values())
        voted = next(a for a in answers if counts[a] == top)
        hits.append(voted == g[0].get("gold"))
    return float(np.mean(hits))


def any_correct(groups: Sequence[list[dict]]) -> float:
    return float(np.mean([any(bool(s["correct"]) for s in g) for g in groups])) if groups else float("nan")

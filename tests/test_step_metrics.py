"""common/step_metrics.py: each metric exact on hand-made solutions; the oracle at the top, random near its
expected value."""

import random

import pytest

from common import step_metrics as sm


def sol(ident, scores, labels, group=None, **kw):
    first = next((i for i, lab in enumerate(labels) if lab == 0), -1) if labels is not None else None
    return {
        "id": ident,
        "group": group or ident,
        "scores": scores,
        "labels": labels,
        "first_error": first,
        "correct": kw.pop("correct", None if labels is None else first == -1),
        **kw,
    }


HAND = [
    sol("a", [0.9, 0.8, 0.1], [1, 1, 0]),  # first error at 2, found at threshold 0.5
    sol("b", [0.9, 0.2, 0.9], [1, 1, 1]),  # correct, but step 1 scored low: an error is named
    sol("c", [0.7, 0.6], [1, 1]),  # correct, nothing named
    sol("d", [0.3, 0.9], [0, 1]),  # first error at 0, found
]


def test_processbench_f1_and_step_f1_by_hand():
    # erroneous a, d: both first errors named (accuracy 1); correct b, c: c right, b not (0.5); F1 = 2/3
    assert sm.processbench_f1(HAND, 0.5) == pytest.approx(2 / 3)
    f = sm.step_f1(HAND, 0.5)  # steps called right: 7 of 10 labelled; 8 are right, 2 wrong
    assert f["f1_correct"] == pytest.approx(2 * 7 / (7 + 8)) and f["f1_erroneous"] == pytest.approx(2 * 2 / (3 + 2))
    assert f["f1_mean"] == pytest.approx((14 / 15 + 4 / 5) / 2)


def test_auroc_by_hand():
    # wrong steps scored 0.1, 0.3; right steps 0.9 0.8 0.9 0.2 0.9 0.7 0.6 0.9: pairs right > wrong: 8 x 2 = 16,
    # 0.2 < 0.3 once: AUROC = 15 / 16
    assert sm.step_auroc(HAND) == pytest.approx(15 / 16)
    assert sm.predicted_first_error([0.9, 0.4, 0.1], 0.5) == 1 and sm.predicted_first_error([0.9], 0.5) == -1


def test_pairwise_and_best_of_n_by_hand():
    gold = sol("g", [-1.0, -0.5], [1, 1], group="p", pair="p", position=1)
    bad = sol("b", [-1.0, -2.0], [1, 0], group="p", pair="p", position=1)
    tie_g = sol("g2", [-1.0], [1], group="q", pair="q", position=0)
    tie_b = sol("b2", [-1.0], [0], group="q", pair="q", position=0)
    assert sm.pairs([gold, bad, tie_g, tie_b]) == [(-0.5, -2.0), (-1.0, -1.0)]
    assert sm.pairwise_accuracy(sm.pairs([gold, bad, tie_g, tie_b])) == 0.75
    q1 = [
        sol("x1", [-0.1, -3.0], None, group="x", correct=False, answer="5", gold="7", score_scale="log"),
        sol("x2", [-1.0, -1.0], None, group="x", correct=True, answer="7", gold="7", score_scale="log"),
        sol("x3", [-2.0, -0.1], None, group="x", correct=True, answer="7", gold="7", score_scale="log"),
    ]
    groups = sm.questions(q1)
    assert sm.best_of_n(groups, "min") == 1.0  # x2: min -1.0 is the best
    assert sm.best_of_n(groups, "last") == 1.0  # x3
    assert sm.best_of_n(groups, "mean") == 1.0  # x2 (-1.0) beats x3 (-1.05) and x1 (-1.55)
    assert sm.best_of_n(groups, "product") == 1.0  # log scale: the sum
    q1[0]["scores"] = [-0.1, -0.1]
    assert sm.best_of_n(groups, "min") == 0.0 and sm.best_of_n(groups, "last") == 0.0
    assert sm.random_choice(groups) == pytest.approx(2 / 3) and sm.majority_vote(groups) == 1.0
    assert sm.any_correct(groups) == 1.0
    assert sm.aggregate([0.5, 0.5], "product", "linear") == 0.25


def test_oracle_reaches_one_and_random_its_expected_value():
    rng = random.Random(0)
    sols = []
    for i in range(400):
        n = rng.randint(2, 8)
        first = rng.choice([-1] + list(range(n)))
        labels = [1] * n if first == -1 else [1] * first + [0] + [rng.choice([0, 1]) for _ in range(n - first - 1)]
        sols.append(sol(f"s{i}", [float(x) for x in labels], labels))
    assert sm.processbench_f1(sols, 0.5) == 1.0 and sm.step_auroc(sols) == 1.0
    assert sm.step_f1(sols, 0.5)["f1_mean"] == 1.0
    for s in sols:
        s["scores"] = [rng.random() for _ in s["labels"]]
    assert abs(sm.step_auroc(sols) - 0.5) < 0.05
    dev, test = sm.split_dev(sols, 0.2, seed=1)
    assert 50 < len(dev) < 110 and len(dev) + len(test) == 400 and sm.split_dev(sols, 0.2, seed=1)[0] == dev
    t = sm.best_threshold(dev, sm.processbench_f1)
    assert sm.processbench_f1(test, t) < 0.6  # random scores name the first error by chance only

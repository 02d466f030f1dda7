import json
import math
import re

import numpy as np
import pytest

from common.artifacts import BadRecordError
from model_inference import evaluate


def make_run(path, heuristic, outcomes, strict=None, ids=None, dataset="gsm8k=/data/gsm8k"):
    path.mkdir(parents=True)
    strict = outcomes if strict is None else strict
    ids = [f"q{i}" for i in range(len(outcomes))] if ids is None else ids
    (path / "part-00000-of-00001.jsonl").write_text(
        "".join(
            json.dumps({"id": i, "correct": c, "correct_strict": s, "heuristic": heuristic}) + "\n"
            for i, c, s in zip(ids, outcomes, strict)
        )
    )
    (path / "manifest.json").write_text(json.dumps({"config": {"dataset": dataset}}))
    return str(path)


def exact_bootstrap_ci(values) -> list[float]:
    """The 2.5% and 97.5% quantiles of the exact bootstrap distribution of the mean of `values` (integers):
    the n-fold convolution of their empirical distribution, computed without sampling. The stage's
    percentile bootstrap lands on these values when no quantile sits near a jump of the CDF."""
    values = np.asarray(values, dtype=int)
    lo = values.min()
    step = np.bincount(values - lo) / len(values)
    pmf = np.array([1.0])
    for _ in values:
        pmf = np.convolve(pmf, step)
    cdf = np.cumsum(pmf)
    means = (lo * len(values) + np.arange(len(pmf))) / len(values)
    return [float(means[np.argmax(cdf >= q - 1e-12)]) for q in (0.025, 0.975)]


def test_numbers_on_a_hand_made_result_file(tmp_path):
    # 10 questions; A right on 7, B right on 3; A only: 5 questions, B only: 1 question
    a = [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    b = [1, 1, 0, 0, 0, 0, 0, 1, 0, 0]
    runs = [
        make_run(tmp_path / "a", "rationalyst", [bool(x) for x in a]),
        make_run(tmp_path / "b", "random", [bool(x) for x in b]),
    ]
    out = tmp_path / "report"
    assert evaluate.main(["--runs", ",".join(runs), "--output", str(out), "--bootstrap", "20000"]) == 0
    res = json.loads((out / "results.json").read_text())
    acc = {r["heuristic"]: r for r in res["accuracy"]}
    assert acc["rationalyst"]["accuracy"] == 0.7 and acc["random"]["accuracy"] == 0.3 and acc["random"]["n"] == 10
    # the exact bootstrap quantiles of 7/10 (P(<= 3/10) = 0.011, P(<= 4/10) = 0.047; P(<= 9/10) = 0.972) and 3/10
    assert exact_bootstrap_ci(a) == [0.4, 1.0] and exact_bootstrap_ci(b) == [0.0, 0.6]
    assert acc["rationalyst"]["ci95"] == [0.4, 1.0] and acc["random"]["ci95"] == [0.0, 0.6]
    [c] = res["comparisons"]
    assert (c["dataset"], c["first"], c["second"], c["n"]) == ("gsm8k", "random", "rationalyst", 10)
    assert c["difference"] == pytest.approx(-0.4)
    assert (c["first_only"], c["second_only"]) == (1, 5)
    assert c["mcnemar_p"] == pytest.approx(2 * (math.comb(6, 0) + math.comb(6, 1)) / 2**6)  # 0.21875
    # paired: the bootstrap resamples questions, i.e. the per-question differences b - a: 1 x +1, 5 x -1, 4 x 0
    diffs = [y - x for x, y in zip(a, b)]
    assert exact_bootstrap_ci(diffs) == [-0.8, 0.0]
    assert c["ci95"] == pytest.approx([-0.8, 0.0], abs=1e-12)
    assert c["unpaired"] == {"first": 0, "second": 0}
    text = (out / "report.md").read_text()
    assert "| gsm8k | rationalyst | 10 | 70.0 | [40.0, 100.0] |" in text and "0.219" in text
    assert "| gsm8k | random − rationalyst | 10 | -40.0 | [-80.0, +0.0] | 1 | 5 |" in text
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_mcnemar_edge_cases():
    assert evaluate.mcnemar_exact(0, 0) == 1.0 and evaluate.mcnemar_exact(3, 3) == 1.0
    assert evaluate.mcnemar_exact(10, 0) == pytest.approx(2 / 2**10)


def test_one_heuristic_per_run(tmp_path):
    path = make_run(tmp_path / "mixed", "random", [True])
    with open(f"{path}/part-00000-of-00001.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "x", "correct": False, "heuristic": "greedy"}) + "\n")
    with pytest.raises(ValueError, match="one heuristic per run"):
        evaluate.evaluate([path], 100, 0)


def test_strict_metric(tmp_path):
    run = make_run(tmp_path / "a", "greedy", [True, True, False, True], strict=[True, False, False, False])
    assert evaluate.evaluate([run], 200, 0)["accuracy"][0]["accuracy"] == 0.75
    res = evaluate.evaluate([run], 200, 0, "correct_strict")
    assert res["metric"] == "correct_strict" and res["accuracy"][0]["accuracy"] == 0.25
    assert evaluate.markdown(res).startswith("Strict answer extraction")


def test_paired_interval_keeps_each_question_s_answers_together(tmp_path):
    """Two heuristics that agree on 19 of 20 questions: the paired interval is [0, 0.15] (only the one
    question where they differ moves it); bootstrapping the two accuracies independently would cross 0
    by about +-0.3. The same interval under every seed: the numbers are the exact bootstrap quantiles."""
    a = [True] * 12 + [False] * 8
    b = [True] * 11 + [False] * 9
    runs = [make_run(tmp_path / "a", "rationalyst", a), make_run(tmp_path / "b", "random", b)]
    assert exact_bootstrap_ci([int(x) - int(y) for x, y in zip(a, b)]) == [0.0, 0.15]
    for seed in (0, 1, 2):
        [c] = evaluate.evaluate(runs, 20000, seed)["comparisons"]
        assert (c["first"], c["second"], c["n"], c["second_only"], c["first_only"]) == (
            "random",
            "rationalyst",
            20,
            1,
            0,
        )
        assert c["difference"] == pytest.approx(-0.05)
        assert c["ci95"] == pytest.approx([-0.15, 0.0], abs=1e-12)
        assert c["mcnemar_p"] == 1.0


def test_partly_overlapping_questions_are_paired_on_the_common_ones(tmp_path):
    # run A answered q0-q9, run B q4-q12 (another shard set, a --limit): 6 questions in common
    a = [True, True, True, True, True, True, True, False, False, False]  # q4-q9: T T T F F F
    b = [True, False, False, True, False, True, True, True, True]  # q4-q9: T F F T F T
    runs = [
        make_run(tmp_path / "a", "rationalyst", a, ids=[f"q{i}" for i in range(10)]),
        make_run(tmp_path / "b", "random", b, ids=[f"q{i}" for i in range(4, 13)]),
    ]
    res = evaluate.evaluate(runs, 20000, 0)
    acc = {r["heuristic"]: r for r in res["accuracy"]}
    assert (acc["rationalyst"]["n"], acc["rationalyst"]["accuracy"]) == (10, 0.7)  # each over its own questions
    assert (acc["random"]["n"], acc["random"]["accuracy"]) == (9, pytest.approx(6 / 9))
    [c] = res["comparisons"]
    # common q4-q9: random T F F T F T (3/6), rationalyst T T T F F F (3/6); random only on q7, q9; rationalyst
    # only on q5, q6
    assert (c["first"], c["n"], c["first_only"], c["second_only"]) == ("random", 6, 2, 2)
    assert c["difference"] == 0.0 and c["mcnemar_p"] == 1.0
    assert c["unpaired"] == {"first": 3, "second": 4}  # random: q10-q12; rationalyst: q0-q3
    diffs = [0, -1, -1, 1, 0, 1]  # random - rationalyst on q4-q9
    assert exact_bootstrap_ci(diffs) == pytest.approx([-2 / 3, 2 / 3])
    assert c["ci95"] == pytest.approx([-2 / 3, 2 / 3], abs=1e-12)
    assert "3 question(s) only in random's run and 4 only in rationalyst's are not paired" in evaluate.markdown(res)


def test_two_runs_of_one_heuristic_on_one_data_set_are_an_error(tmp_path):
    first = make_run(tmp_path / "gsm8k-random", "random", [True, False])
    again = make_run(tmp_path / "gsm8k-random-rerun", "random", [False, False], dataset="gsm8k=/other/copy")
    other_set = make_run(tmp_path / "math-random", "random", [True], dataset="math")
    assert len(evaluate.evaluate([first, other_set], 100, 0)["accuracy"]) == 2  # another data set: fine
    with pytest.raises(ValueError, match=r"gsm8k-random and .*gsm8k-random-rerun are both random on gsm8k"):
        evaluate.evaluate([first, other_set, again], 100, 0)


@pytest.mark.parametrize("value", ["false", "true", 1, 0, None, [True]])
def test_a_metric_that_is_not_a_json_boolean_is_refused(tmp_path, value):
    path = make_run(tmp_path / "run", "random", [True, False])
    shard = tmp_path / "run" / "part-00000-of-00001.jsonl"
    with open(shard, "a") as fh:
        fh.write("\n" + json.dumps({"id": "q2", "correct": value, "heuristic": "random"}) + "\n")  # a blank line 3
    with pytest.raises(BadRecordError, match=re.escape(f"{shard}:4: 'correct' must be true or false, got {value!r}")):
        evaluate.evaluate([path], 100, 0)
    if value in ("false", "true"):
        strict = make_run(tmp_path / "strict", "random", [True], strict=[value])
        with pytest.raises(BadRecordError, match="'correct_strict' must be true or false"):
            evaluate.evaluate([strict], 100, 0, "correct_strict")


@pytest.mark.parametrize("ident", [True, 1.5, None, {"q": 1}])
def test_an_id_that_is_not_a_string_or_an_integer_is_refused(tmp_path, ident):
    path = make_run(tmp_path / "run", "random", [True, False], ids=["q0", ident])
    with pytest.raises(BadRecordError, match=r"part-00000-of-00001.jsonl:2: 'id' must be a string or an integer"):
        evaluate.evaluate([path], 100, 0)


def test_duplicate_ids_are_refused_within_and_across_shards(tmp_path):
    within = make_run(tmp_path / "within", "random", [True, False, True], ids=["q0", "q1", "q0"])
    with pytest.raises(BadRecordError, match=r"jsonl:3: duplicate id 'q0' \(first at .*jsonl:1\)"):
        evaluate.evaluate([within], 100, 0)
    # two shards of one run (an array of 2) that both hold q1; an integer id 7 and a string "7" are one question
    across = tmp_path / "across"
    across.mkdir()
    (across / "manifest.json").write_text(json.dumps({"config": {"dataset": "gsm8k"}}))
    rec = [{"id": i, "correct": True, "heuristic": "greedy"} for i in ("q0", "q1", "q1", 7, "7")]
    (across / "part-00000-of-00002.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rec[:2]))
    (across / "part-00001-of-00002.jsonl").write_text(json.dumps(rec[2]) + "\n")
    with pytest.raises(BadRecordError, match=r"part-00001-of-00002.jsonl:1: duplicate id 'q1' \(first at .*part-00000"):
        evaluate.evaluate([str(across)], 100, 0)
    (across / "part-00001-of-00002.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rec[3:]))
    with pytest.raises(BadRecordError, match=r"part-00001-of-00002.jsonl:2: duplicate id '7'"):
        evaluate.evaluate([str(across)], 100, 0)


def test_headline_rows_average_over_data_sets_against_random(tmp_path):
    """The paper's headline (rationalyst.md 9): the mean accuracy over the benchmarks and the difference to
    no supervision, with a paired interval over all questions."""
    runs = [
        make_run(tmp_path / "g-r", "random", [True, False, False, False], dataset="gsm8k"),
        make_run(tmp_path / "g-x", "rationalyst", [True, True, False, False], dataset="gsm8k"),
        make_run(tmp_path / "m-r", "random", [False] * 8, dataset="math"),
        make_run(tmp_path / "m-x", "rationalyst", [True] * 4 + [False] * 4, dataset="math"),
    ]
    results = evaluate.evaluate([str(r) for r in runs], n_boot=2000, seed=0)
    [h] = results["headline"]
    assert h["heuristic"] == "rationalyst" and h["datasets"] == ["gsm8k", "math"] and h["n"] == 12
    assert h["mean_accuracy"] == pytest.approx((0.5 + 0.5) / 2) and h["baseline_mean_accuracy"] == pytest.approx(0.125)
    assert h["difference"] == pytest.approx((0.25 + 0.5) / 2)  # the mean of the per-set differences
    assert 0 <= h["ci95"][0] <= h["difference"] <= h["ci95"][1] <= 0.75 and h["p"] < 0.1
    assert "| rationalyst − random | 2 | 12 | 50.0 | 12.5 | +37.5 |" in evaluate.markdown(results)

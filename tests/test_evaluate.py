import json
import math

import pytest

from model_inference import evaluate


def make_run(path, heuristic, outcomes, strict=None):
    path.mkdir(parents=True)
    strict = outcomes if strict is None else strict
    (path / "part-00000-of-00001.jsonl").write_text(
        "".join(
            json.dumps({"id": f"q{i}", "correct": c, "correct_strict": s, "heuristic": heuristic}) + "\n"
            for i, (c, s) in enumerate(zip(outcomes, strict))
        )
    )
    (path / "manifest.json").write_text(json.dumps({"config": {"dataset": "gsm8k=/data/gsm8k"}}))
    return str(path)


def test_numbers_on_a_hand_made_result_file(tmp_path):
    # 10 questions; A right on 7, B right on 3; A only: 5 questions, B only: 1 question
    a = [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    b = [1, 1, 0, 0, 0, 0, 0, 1, 0, 0]
    runs = [
        make_run(tmp_path / "a", "rationalyst", [bool(x) for x in a]),
        make_run(tmp_path / "b", "random", [bool(x) for x in b]),
    ]
    out = tmp_path / "report"
    assert evaluate.main(["--runs", ",".join(runs), "--output", str(out), "--bootstrap", "2000"]) == 0
    res = json.loads((out / "results.json").read_text())
    acc = {r["heuristic"]: r for r in res["accuracy"]}
    assert acc["rationalyst"]["accuracy"] == 0.7 and acc["random"]["accuracy"] == 0.3 and acc["random"]["n"] == 10
    lo, hi = acc["rationalyst"]["ci95"]
    assert 0.3 <= lo < 0.7 < hi <= 1.0
    [c] = res["comparisons"]
    first_is_random = c["first"] == "random"
    assert c["dataset"] == "gsm8k" and c["n"] == 10
    assert c["difference"] == pytest.approx(-0.4 if first_is_random else 0.4)
    assert {c["first_only"], c["second_only"]} == {5, 1}
    assert c["mcnemar_p"] == pytest.approx(2 * (math.comb(6, 0) + math.comb(6, 1)) / 2**6)  # 0.21875
    text = (out / "report.md").read_text()
    assert "| gsm8k | rationalyst | 10 | 70.0 |" in text and "0.219" in text
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

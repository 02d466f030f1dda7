"""model_inference.verify_steps and model_inference.evaluate_steps end to end: generate scores on real data
with a real (tiny) model, decode, report."""

import json
import math

import pytest

from model_inference import evaluate_steps, verify_steps
from tests.conftest import shared_data


def read(out):
    return [json.loads(line) for line in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]


def run(tmp_path, data, scorer, *extra):
    out = tmp_path / f"{scorer}-{data.split('=')[0].replace(':', '_')}"
    assert verify_steps.main(["--data", data, "--scorer", scorer, "--output", str(out), *extra]) == 0
    return out


def test_scores_align_with_steps_and_the_report_has_its_bounds(tmp_path, tiny_llama_dir):
    data = f"prmbench={shared_data('prmbench', 'prmbench_subset400.jsonl')}"
    runs = [run(tmp_path, data, s, "--limit", "40") for s in ("random", "oracle", "position", "length")]
    runs.append(run(tmp_path, data, "likelihood", "--limit", "40", "--model", tiny_llama_dir, "--device", "cpu"))
    rows = read(runs[-1])
    assert len(rows) == 40 and all(len(r["scores"]) == len(r["steps"]) == len(r["labels"]) for r in rows)
    assert all(r["scorer"] == "likelihood" and r["score_scale"] == "log" for r in rows)
    assert run(tmp_path, data, "likelihood", "--limit", "40", "--model", tiny_llama_dir, "--device", "cpu") == runs[-1]
    assert read(runs[-1]) == rows  # a rerun skips the finished shard
    report = tmp_path / "report"
    assert evaluate_steps.main(["--runs", ",".join(map(str, runs)), "--output", str(report), "--bootstrap", "100"]) == 0
    results = json.loads((report / "results.json").read_text())["prmbench"]
    assert results["scorers"]["oracle"]["auroc"][0] == 1.0
    f1 = results["scorers"]["oracle"]["processbench_f1"][0]
    assert f1 == 1.0 or math.isnan(f1)  # NaN: no correct solution among the test items
    assert 0.3 < results["scorers"]["random"]["auroc"][0] < 0.7
    pairs = {(t["first"], t["second"]) for t in results["paired"]}
    assert {("likelihood", "random"), ("likelihood", "position"), ("likelihood", "length")} <= pairs
    text = (report / "report.md").read_text()
    assert "| oracle |" in text and "| random |" in text and (report / "steps.png").exists()


def test_best_of_n_report(tmp_path):
    data = f"gsm8k_solutions={shared_data('gsm8k', 'example_model_solutions_first100.jsonl')}"
    runs = [run(tmp_path, data, s, "--limit", "30") for s in ("random", "oracle", "length")]
    report = tmp_path / "report"
    assert evaluate_steps.main(["--runs", ",".join(map(str, runs)), "--output", str(report), "--bootstrap", "50"]) == 0
    res = json.loads((report / "results.json").read_text())["gsm8k_solutions"]["scorers"]
    base = res["random"]["best_of_n_baselines"]
    assert res["oracle"]["best_of_n"]["min"][0] == base["oracle (any correct)"] > base["random choice"]
    assert 0 <= base["majority vote"] <= 1


def test_a_second_run_of_a_scorer_is_refused_and_bad_data_is_named(tmp_path):
    data = "perturbed:gsm_symbolic"
    a = run(tmp_path, data, "random", "--limit", "3")
    (tmp_path / "again").mkdir()
    b = run(tmp_path / "again", data, "random", "--limit", "3")
    with pytest.raises(SystemExit, match="a second run of scorer 'random'"):
        evaluate_steps.main(["--runs", f"{a},{b}", "--output", str(tmp_path / "r")])
    with pytest.raises(SystemExit, match="unknown step scorer 'prm'"):
        verify_steps.main(["--data", data, "--scorer", "prm", "--output", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="needs --rationale-model"):
        verify_steps.main(["--data", data, "--scorer", "rationalyst", "--output", str(tmp_path / "y")])

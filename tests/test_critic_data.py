import json
import random

import pytest

from common.refiner_format import NO_HINT
from common.tasks import mwp
from training import critic_data
from tests.conftest import shared_data

PROBLEMS = [
    {"id": "p0", "question": "Bryan has number0 books in each of his number1 bookshelves . how many books ?",
     "formula": "#0: multiply ( number0, number1 ) | EOS", "numbers": [56.0, 9.0], "answer": 504.0},
    {"id": "p1", "question": "Conner has number0 dollars . he spends number1 a month . after number2 months ?",
     "formula": "#0: multiply ( number1, number2 ) | #1: subtract ( number0, #0 ) | EOS",
     "numbers": [25000.0, 1500.0, 8.0], "answer": 13000.0},
]
EXPECTED = {"numbers": r"the (first|second) number in #\d is incorrect\.", "operator": r"the operator in #\d is incorrect\.",
            "remove": r"add an operator\..*", "add": r"remove an operator\."}


def check(critic, problems):
    import re
    gold = {p["id"]: p["formula"] for p in problems}
    for rec in critic:
        pid, kind = rec["id"].rsplit("-", 1)
        hypothesis = rec["input"].split(" Previous Answer: ", 1)[1]
        if kind == "gold":
            assert hypothesis == gold[pid] and rec["target"] == NO_HINT
            continue
        assert mwp.parse(hypothesis) != mwp.parse(gold[pid]), rec          # every perturbation changes z
        assert re.fullmatch(EXPECTED[kind], rec["target"]), rec             # and gets feedback of its kind
        assert rec["target"] == mwp.oracle_feedback(hypothesis, gold[pid])


def test_each_perturbation_changes_z_and_gets_the_right_feedback():
    critic, refine, counts = critic_data.mwp_records(PROBLEMS, seed=0, include_gold=True)
    check(critic, PROBLEMS)
    assert counts == {"numbers": 2, "operator": 2, "remove": 1, "add": 1}
    assert all(r["target"] == next(p["formula"] for p in PROBLEMS if r["id"].startswith(p["id"] + "-")) for r in refine)
    assert all("<hint>" in r["input"] and r["input"].endswith("| EOH") for r in refine)


def test_subtract_is_perturbed_too():
    z = "#0: subtract ( number0, number1 ) | EOS"
    ops = {mwp.parse(critic_data.perturb(z, 2, "operator", random.Random(s)))[0].op for s in range(40)}
    assert ops == {"add", "multiply", "divide"}


def test_seeded():
    assert critic_data.mwp_records(PROBLEMS, 3, True) == critic_data.mwp_records(PROBLEMS, 3, True)
    assert critic_data.mwp_records(PROBLEMS, 3, True) != critic_data.mwp_records(PROBLEMS, 4, True)


def test_stage_on_the_whole_training_csv(tmp_path):
    csv_path = shared_data("svamp", "mawps-asdiv-a_svamp_train.csv")
    out = tmp_path / "critic"
    assert critic_data.main(["--input", str(csv_path), "--output", str(out)]) == 0
    critic = [json.loads(l) for l in (out / "critic" / "part-00000-of-00001.jsonl").read_text().splitlines()]
    problems = mwp.load(csv_path)
    check(critic, problems)
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["problems"] == 3138 and counts["operator"] == 3138 and counts["critic"] == len(critic)
    with pytest.raises(SystemExit):
        critic_data.main(["--input", str(csv_path), "--output", str(out), "--task", "snlr"])

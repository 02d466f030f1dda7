import json
import random

import pytest

from common.tasks import refiner
from common.tasks.refiner import mwp
from common.tasks.refiner.format import NO_HINT, is_no_hint, refine_input
from tests.conftest import shared_data
from training import critic_data

PROBLEMS = [
    {
        "id": "p0",
        "x": "Bryan has number0 books in each of his number1 bookshelves . how many books ?",
        "z": "#0: multiply ( number0, number1 ) | EOS",
        "numbers": [56.0, 9.0],
        "answer": 504.0,
    },
    {
        "id": "p1",
        "x": "Conner has number0 dollars . he spends number1 a month . after number2 months ?",
        "z": "#0: multiply ( number1, number2 ) | #1: subtract ( number0, #0 ) | EOS",
        "numbers": [25000.0, 1500.0, 8.0],
        "answer": 13000.0,
    },
]
EXPECTED = {
    "numbers": r"the (first|second) number in #\d is incorrect\.",
    "operator": r"the operator in #\d is incorrect\.",
    "remove": r"add an operator\..*",
    "add": r"remove an operator\.",
}


def check(critic, problems):
    import re

    gold = {p["id"]: p["z"] for p in problems}
    for rec in critic:
        kind = rec["kind"]
        pid = rec["id"].rsplit("-", 1 if kind == "gold" else 2)[0]  # <id>-gold, <id>-<n>-<kind>
        hypothesis = rec["input"].split(" Previous Answer: ", 1)[1]
        if kind == "gold":
            assert hypothesis == gold[pid] and rec["target"] == NO_HINT
            continue
        assert mwp.parse(hypothesis) != mwp.parse(gold[pid]), rec  # every perturbation changes z
        assert re.fullmatch(EXPECTED[kind], rec["target"]), rec  # and gets feedback of its kind
        assert rec["target"] == mwp.oracle_feedback(hypothesis, gold[pid])


def test_each_perturbation_changes_z_and_gets_the_right_feedback():
    critic, refine, counts = critic_data.task_records(mwp, PROBLEMS, seed=0, include_gold=True)
    check(critic, PROBLEMS)
    assert counts == {"numbers": 2, "operator": 2, "remove": 1, "add": 1}
    assert all(r["target"] == next(p["z"] for p in PROBLEMS if r["id"].startswith(p["id"] + "-")) for r in refine)
    assert all("<hint>" in r["input"] and r["input"].endswith("| EOH") for r in refine)


def test_subtract_is_perturbed_too():
    z = "#0: subtract ( number0, number1 ) | EOS"
    ops = {mwp.parse(mwp.perturb(z, 2, "operator", random.Random(s)))[0].op for s in range(40)}
    assert ops == {"add", "multiply", "divide"}


def test_seeded():
    assert critic_data.task_records(mwp, PROBLEMS, 3, True) == critic_data.task_records(mwp, PROBLEMS, 3, True)
    assert critic_data.task_records(mwp, PROBLEMS, 3, True) != critic_data.task_records(mwp, PROBLEMS, 4, True)


def test_stage_on_the_whole_training_csv(tmp_path):
    csv_path = shared_data("svamp", "mawps-asdiv-a_svamp_train.csv")
    out = tmp_path / "critic"
    assert critic_data.main(["--input", str(csv_path), "--output", str(out)]) == 0
    critic = [json.loads(l) for l in (out / "critic" / "part-00000-of-00001.jsonl").read_text().splitlines()]
    problems = mwp.load_examples(csv_path)
    check(critic, problems)
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["examples"] == 3138 and counts["operator"] == 3138 and counts["critic"] == len(critic)
    with pytest.raises(SystemExit, match="unknown REFINER task 'nope'"):
        critic_data.main(["--input", str(csv_path), "--output", str(out), "--task", "nope"])


# ----------------------------------------------------------------------------- sNLR and Moral Stories


def first_records(path, n, tmp_path):
    """The first n records of a real file, in its own format (a JSON array)."""
    out = tmp_path / f"{n}-{path.name}"
    out.write_text(json.dumps(json.loads(path.read_text())[:n], indent=2))
    return out


def read_shard(folder):
    return [json.loads(l) for l in (folder / "part-00000-of-00001.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    "task,parts,n",
    [
        ("snlr", ("refiner", "srn", "srn_val.json"), 150),
        ("moral_stories", ("refiner", "moral_stories", "critic_dev_prep.json"), 30),
    ],
)
def test_stage_on_the_real_dev_files(tmp_path, task, parts, n):
    src = first_records(shared_data(*parts), n, tmp_path)
    out = tmp_path / "out"
    assert critic_data.main(["--task", task, "--input", str(src), "--output", str(out), "--seed", "1"]) == 0
    module = refiner.get_task(task)
    examples = {e["id"]: e for e in module.load_examples(src)}
    critic, refine = read_shard(out / "critic"), read_shard(out / "refine")
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["examples"] == n and counts["critic"] == len(critic) == n + sum(
        counts[k] for k in module.PERTURBATIONS
    )
    assert all(counts[k] > 0 for k in module.PERTURBATIONS) and counts["refine"] == len(refine)
    expected_refine = []
    for rec in critic:
        ex = examples[rec["id"].rsplit("-", 1 if rec["kind"] == "gold" else 2)[0]]
        x, hypothesis = rec["input"].split(" Previous Answer: ", 1)
        assert x == ex["x"] and rec["target"] == module.critique(ex, hypothesis)
        if rec["kind"] == "gold":
            assert hypothesis == ex["z"] and rec["target"] == NO_HINT
            continue
        assert hypothesis != ex["z"] and is_no_hint(rec["target"]) == (rec["kind"] == "paraphrase")
        if not is_no_hint(rec["target"]):
            expected_refine.append(
                {
                    "id": rec["id"],
                    "kind": rec["kind"],
                    "input": refine_input(x, hypothesis, rec["target"]),
                    "target": ex["z"],
                }
            )
    assert refine == expected_refine


def test_snlr_records_are_seeded_per_example(tmp_path):
    path = shared_data("refiner", "srn", "srn_val.json")
    runs = {}
    for n, seed in ((60, 0), (20, 0), (60, 1)):
        out = tmp_path / f"out-{n}-{seed}"
        critic_data.main(
            [
                "--task",
                "snlr",
                "--input",
                str(first_records(path, n, tmp_path)),
                "--output",
                str(out),
                "--seed",
                str(seed),
            ]
        )
        runs[n, seed] = [(r["id"].split("-", 1)[1], r["input"]) for r in read_shard(out / "critic")]
    small = runs[20, 0]
    assert runs[60, 0][: len(small)] == small  # an example's records do not depend on the others
    assert runs[60, 1] != runs[60, 0]


def test_a_malformed_record_names_file_and_line(tmp_path):
    records = json.loads(shared_data("refiner", "srn", "srn_train.json").read_text())[:3]
    del records[1]["fact"]
    path = tmp_path / "srn_bad.json"
    path.write_text(json.dumps(records, indent=4))
    line = [i for i, l in enumerate(path.read_text().splitlines(), 1) if l == "    {"][1]
    with pytest.raises(SystemExit, match=rf"srn_bad.json:{line}: missing field\(s\) fact"):
        critic_data.main(["--task", "snlr", "--input", str(path), "--output", str(tmp_path / "out")])
    assert (
        critic_data.main(
            ["--task", "snlr", "--input", str(path), "--output", str(tmp_path / "out"), "--on-bad-record", "skip"]
        )
        == 0
    )
    counts = json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]
    assert counts["examples"] == 2 and counts["bad_records"] == 1

import json

from sampling import filter_rationales


def scored(n):
    return [
        {
            "id": f"t{i}",
            "source": "gsm8k",
            "preceding": f"p{i}",
            "rationale": f"r{i}",
            "following": f"f{i}",
            "score_with": -10.0 + (i % 4),
            "score_without": -9.0,
        }
        for i in range(n)
    ]


def read(path):
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def test_keep_rule_split_and_counts(tmp_path):
    inp = tmp_path / "scored.jsonl"
    rows = scored(400)
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "filtered"
    assert filter_rationales.main(["--input", str(inp), "--output", str(out), "--seed", "3"]) == 0
    train = read(out / "train" / "part-00000-of-00001.jsonl")
    dev = read(out / "dev" / "part-00000-of-00001.jsonl")
    kept = {r["id"] for r in rows if r["score_with"] - r["score_without"] >= 0}  # gain -1, 0, 1, 2
    assert {r["id"] for r in train + dev} == kept and not {r["id"] for r in train} & {r["id"] for r in dev}
    assert 0 < len(dev) < 0.12 * len(kept)
    assert set(train[0]) == {"id", "source", "preceding", "rationale", "following", "gain"}
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts == {"in": 400, "kept": 300, "bad_records": 0, "train": len(train), "dev": len(dev)}
    # same seed, same split; tau raises the bar; a rerun replaces the outputs
    assert filter_rationales.main(["--input", str(inp), "--output", str(out), "--seed", "3", "--tau", "1.5"]) == 0
    assert {r["id"] for r in read(out / "train" / "part-00000-of-00001.jsonl")} == {
        r["id"] for r in train if r["gain"] >= 1.5
    }


def test_precision_recall_against_labels(tmp_path):
    inp = tmp_path / "scored.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in scored(8)))  # kept: t1 t2 t3 t5 t6 t7
    labels = tmp_path / "labels.tsv"
    labels.write_text(
        "id\tpreceding\trationale\tfollowing\tlabel\nt1\t\t\t\t1\nt2\t\t\t\t0\nt4\t\t\t\t1\n\tp5\tr5\tf5\t1\n"
    )
    out = tmp_path / "filtered"
    assert filter_rationales.main(["--input", str(inp), "--output", str(out), "--labels", str(labels)]) == 0
    ev = json.loads((out / "manifest.json").read_text())["shards"][0]["label_eval"]
    assert ev["labelled_matched"] == 4 and (ev["tp"], ev["fp"], ev["fn"]) == (2, 1, 1)
    assert ev["precision"] == 2 / 3 and ev["recall"] == 2 / 3

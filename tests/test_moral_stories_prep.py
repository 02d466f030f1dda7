"""training.moral_stories_prep: REFINER's Moral Stories prep records from the stories (refiner.md 2.4, step 1)."""

import json

import pytest

from common.artifacts import read_jsonl
from common.tasks.refiner import moral_stories as ms
from common.tasks.refiner import moral_stories_prep as prep
from tests.conftest import shared_data
from training import critic_data, moral_stories_prep


@pytest.fixture(scope="module")
def models():
    try:
        return prep.Models()
    except prep.MissingModel as exc:
        pytest.skip(f"NLP models for the Moral Stories prep are absent: {exc}")


@pytest.fixture(scope="module")
def dev_rows():
    return json.loads(shared_data("refiner", "moral_stories", "actor_dev.json").read_text())[:5]


def _run(tmp_path, rows, name="rows.json", *args):
    src = tmp_path / name
    src.write_text(json.dumps(rows))
    out = tmp_path / f"out-{name}"
    assert moral_stories_prep.main(["--input", str(src), "--output", str(out), *args]) == 0
    return out, json.loads((out / moral_stories_prep.OUTPUT_NAME).read_text())


def test_layout_loader_and_critic_data_end_to_end(models, dev_rows, tmp_path):
    out, records = _run(tmp_path, dev_rows)
    reference = json.loads(shared_data("refiner", "moral_stories", "critic_dev_prep.json").read_text())
    ref_keys = set(reference[0]) - set(prep.PASS_THROUGH)
    assert [r["id"] for r in records] == [r["id"] for r in dev_rows]
    for r in records:
        assert set(r) == ref_keys
        assert len(r["fake_norms"]) == len(r["fake_norm_sentiments"]) == len(r["fake_norm_concepts"])
        assert set(r["fake_norm_sentiments"]) <= {1, -1} and r["norm_sentiment"] in (1.0, -1.0)
    brian = records[0]  # "You should help others when they're in danger."
    assert brian["norm_judgment"] == "You should" and brian["norm_action"] == "helping others when they're in danger."
    assert brian["anti_norm"] == ms.invert(brian["norm"]) and ms.polarity(brian["anti_norm"]) == -1
    assert "It's good to help others when they're in danger." in brian["other_norms"] or (
        "It is good to help others when they're in danger." in brian["other_norms"]
    )
    assert {"help others", "be in danger"} == set(brian["norm_concepts"])
    manifest = json.loads((out / "manifest.json").read_text())
    used = manifest["shards"][0]["models"]
    assert used["spacy_model"] == prep.SPACY_MODEL and used["packages"]["spacy"].startswith("3.8")
    assert used["wordnet"].startswith("WordNet 3.0")

    examples = ms.load_examples(out / moral_stories_prep.OUTPUT_NAME)  # the loader takes the prep layout
    assert [e["id"] for e in examples] == [r["id"] for r in dev_rows]
    assert all(e["paraphrases"] and e["anti_norms"] and e["fake_norms"] for e in examples)
    crit = tmp_path / "critic"
    args = ["--task", "moral_stories", "--input", str(out / moral_stories_prep.OUTPUT_NAME), "--output", str(crit)]
    assert critic_data.main(args) == 0
    critic = list(read_jsonl(next((crit / "critic").glob("part-*.jsonl"))))
    kinds = {r["kind"] for r in critic}
    assert kinds == {"gold", "paraphrase", "contradiction", "fake_norm"}
    assert all(r["target"] == "contradiction" for r in critic if r["kind"] == "contradiction")
    assert all(r["target"] != "contradiction" for r in critic if r["kind"] == "fake_norm")


def test_same_seed_same_records(models, dev_rows, tmp_path):
    _, a = _run(tmp_path, dev_rows, "a.json")
    _, b = _run(tmp_path, dev_rows, "b.json")
    _, c = _run(tmp_path, dev_rows, "c.json", "--seed", "1")
    assert a == b
    assert a != c  # the random prefixes and polarities follow the seed
    assert [r["context_concepts"] for r in a] == [r["context_concepts"] for r in c]  # the parses do not


def test_moral_stories_jsonl_row(models, tmp_path):
    row = {
        "ID": "s1",
        "norm": "Leaving work unfinished is bad.",
        "situation": "Sam has a report due.",
        "intention": "Sam wants to watch a movie.",
        "moral_action": "Sam finishes the report before watching the movie.",
        "immoral_action": "Sam leaves the report unfinished and watches the movie.",
    }
    src = tmp_path / "rows.jsonl"
    src.write_text(json.dumps(row) + "\n")
    out = tmp_path / "out"
    assert moral_stories_prep.main(["--input", str(src), "--output", str(out)]) == 0
    (r,) = json.loads((out / moral_stories_prep.OUTPUT_NAME).read_text())
    assert (r["id"], r["norm_judgment"], r["norm_action"], r["norm_sentiment"]) == (
        "s1",
        "bad",
        "Leaving work unfinished",
        -1.0,
    )
    assert r["anti_norm"].endswith("to leave work unfinished.") and ms.polarity(r["anti_norm"]) == 1


def test_bad_row_names_file_and_record(dev_rows, tmp_path):
    rows = [dev_rows[0], {"id": "x", "actor_input": "no markers here", "actor_output": "a <|M_ACT|> b"}]
    src = tmp_path / "bad.json"
    src.write_text(json.dumps(rows, indent=1))
    with pytest.raises(SystemExit, match=r"bad\.json:\d+: actor_input is not"):
        moral_stories_prep.main(["--input", str(src), "--output", str(tmp_path / "out")])
    src.write_text(json.dumps([{"ID": "y", "norm": "n", "situation": "s"}]))
    with pytest.raises(SystemExit, match=r"bad\.json:1: missing field\(s\) intention"):
        moral_stories_prep.main(["--input", str(src), "--output", str(tmp_path / "out")])


def test_compare_counts_fields():
    ref = {
        "id": "a",
        "norm_sentiment": 2.0,
        "anti_norm": "It's bad to x.",
        "norm_judgment": "you should",
        "norm_action": "xing.",
        "other_norms": ["It's good to x.", "It is right to x."],
        "other_anti_norms": [],
        "fake_norms": ["it's rude to y"],
        "fake_norm_sentiments": [-1],
        "norm_concepts": ["x"],
        "fake_norm_concepts": [["y"]],
        "context_concepts": ["y", "z"],
    }
    ours = dict(
        ref, norm_sentiment=1.0, norm_judgment="You should", other_norms=["It is good to x.", "It's right to x."]
    )
    ours.update(fake_norms=["you must y"], context_concepts=["y"])
    fields = prep.compare([ours], [ref])["fields"]
    assert fields["norm_sentiment"] == {"exact": 0, "normalized": 1}
    assert fields["norm_judgment"] == {"exact": 0, "normalized": 1}
    assert fields["other_norms"]["exact"] == 0 and fields["other_norms"]["normalized"] == 1
    assert fields["fake_norms"]["normalized"] == 1  # the same phrase under another random prefix
    assert fields["context_concepts"] == {"exact": 0, "normalized": 0, "recall": 0.5, "precision": 1.0}

import json

from common.tasks.refiner import split_examples
from tests.conftest import CSV
from training import refiner_examples


def test_split_is_disjoint_seeded_and_takes_the_fraction():
    examples = [{"id": str(i)} for i in range(100)]
    train, dev = split_examples(examples, 0.1, 0.2, seed=3)
    assert len(dev) == 20 and len(train) == 8 and not {e["id"] for e in train} & {e["id"] for e in dev}
    assert (train, dev) == split_examples(examples, 0.1, 0.2, seed=3)
    full, dev2 = split_examples(examples, 1.0, 0.2, seed=3)
    assert dev2 == dev and len(full) == 80


def test_writes_generator_records(tmp_path):
    (tmp_path / "mwp.csv").write_text(CSV)
    assert (
        refiner_examples.main(
            ["--input", str(tmp_path / "mwp.csv"), "--output", str(tmp_path / "out"), "--dev-fraction", "0.34"]
        )
        == 0
    )
    train = [json.loads(x) for x in (tmp_path / "out" / "train" / "part-00000-of-00001.jsonl").read_text().splitlines()]
    dev = [json.loads(x) for x in (tmp_path / "out" / "dev" / "part-00000-of-00001.jsonl").read_text().splitlines()]
    assert len(train) == 4 and len(dev) == 2
    assert train[0]["target"].endswith("| EOS") and "number0" in train[0]["input"]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["dev"] == 2

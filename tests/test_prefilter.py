import json

import pytest

from sampling import prefilter
from tests.conftest import mixed_corpus


def test_preprocess_per_spec():
    assert prefilter.preprocess("The Cat's  HAT, is (very) red!\nIsn't it?") == "cats hat red isnt"
    assert prefilter.preprocess("The cat", remove_stopwords=False) == "the cat"
    assert len(prefilter.STOPWORDS) == 179


@pytest.mark.slow
def test_reasoning_documents_rank_above_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("PROCSUP_CACHE", str(tmp_path / "cache"))
    kinds = mixed_corpus(tmp_path / "corpus.jsonl")
    args = [
        "--input",
        str(tmp_path / "corpus.jsonl"),
        "--reference-sets",
        "gsm_symbolic",
        "--reference-limit",
        "100",
        "--device",
        "cpu",
        "--encode-batch",
        "16",
    ]
    assert prefilter.main(args + ["--output", str(tmp_path / "all"), "--threshold", "-1"]) == 0
    rows = [json.loads(l) for l in (tmp_path / "all" / "part-00000-of-00001.jsonl").read_text().splitlines()]
    assert len(rows) == 45 and all(r["source"] in ("prose", "reasoning") for r in rows)
    reasoning = [r["score"] for r in rows if kinds[r["text"]] == "reasoning"]
    prose = [r["score"] for r in rows if kinds[r["text"]] == "prose"]
    auc = sum(r > p for r in reasoning for p in prose) / (len(reasoning) * len(prose))
    assert auc > 0.95 and min(reasoning) > sum(prose) / len(prose) + 0.1
    manifest = json.loads((tmp_path / "all" / "manifest.json").read_text())
    assert manifest["counts"]["too_long"] == 1 and manifest["counts"]["in"] == 46
    assert len(list((tmp_path / "cache" / "centroids").glob("*.npy"))) == 1
    # the paper's threshold keeps every worked problem; a subset filter keeps only that subset
    assert prefilter.main(args + ["--output", str(tmp_path / "kept"), "--pile-subsets", "reasoning"]) == 0
    kept = [json.loads(l) for l in (tmp_path / "kept" / "part-00000-of-00001.jsonl").read_text().splitlines()]
    assert {r["source"] for r in kept} == {"reasoning"} and len(kept) == 15
    assert len(list((tmp_path / "cache" / "centroids").glob("*.npy"))) == 1  # centroid reused

import importlib.util
import json
import re
from pathlib import Path

import pytest

from sampling import prefilter


def test_preprocess_per_spec():
    assert prefilter.preprocess("The Cat's  HAT, is (very) red!\nIsn't it?") == "cats hat red isnt"
    assert prefilter.preprocess("The cat", remove_stopwords=False) == "the cat"
    assert len(prefilter.STOPWORDS) == 179


def mixed_corpus(path: Path, n_prose: int = 30, n_reasoning: int = 15) -> dict[str, str]:
    """Public-domain prose (Jules Verne, shipped in reasoning-gym) and GSM8K-style worked problems."""
    import reasoning_gym
    verne = Path(importlib.util.find_spec("reasoning_gym").submodule_search_locations[0]) / "data" / \
        "in_the_year_2889.txt"
    prose = [" ".join(p.split()) for p in re.split(r"\n\s*\n", verne.read_text()) if len(p) > 200][:n_prose]
    problems = [x["question"] + "\n" + x["metadata"]["answer_cot"]
                for x in reasoning_gym.create_dataset("gsm_symbolic", size=n_reasoning, seed=77)]
    kinds = {}
    with open(path, "w") as fh:
        for kind, texts in (("prose", prose), ("reasoning", problems)):
            for t in texts:
                fh.write(json.dumps({"text": t, "meta": {"pile_set_name": kind}}) + "\n")
                kinds[t] = kind
    fh = open(path, "a")
    fh.write(json.dumps({"text": "x" * 2100}) + "\n")     # over max_chars
    fh.close()
    return kinds


@pytest.mark.slow
def test_reasoning_documents_rank_above_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("PROCSUP_CACHE", str(tmp_path / "cache"))
    kinds = mixed_corpus(tmp_path / "corpus.jsonl")
    args = ["--input", str(tmp_path / "corpus.jsonl"), "--reference-sets", "gsm_symbolic", "--reference-limit",
            "100", "--device", "cpu", "--encode-batch", "16"]
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
    assert len(list((tmp_path / "cache" / "centroids").glob("*.npy"))) == 1   # centroid reused

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


def _split_corpus(root):
    """Four files of 2, 3, 4 and 5 documents: .jsonl, .jsonl.zst, .txt, and .jsonl in a sub-folder."""
    import zstandard

    docs = {
        name: [f"{name} document {k}: three apples and two pears make five." for k in range(n)]
        for name, n in (("a", 2), ("b", 3), ("c", 4), ("d", 5))
    }
    (root / "sub").mkdir(parents=True)
    (root / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in docs["a"]))
    zst = "".join(json.dumps({"text": t}) + "\n" for t in docs["b"]).encode()
    (root / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(zst))
    (root / "c.txt").write_text("\n\n".join(docs["c"]))
    (root / "sub" / "d.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in docs["d"]))
    return docs


@pytest.mark.slow
def test_array_tasks_read_disjoint_files(tmp_path, monkeypatch):
    monkeypatch.setenv("PROCSUP_CACHE", str(tmp_path / "cache"))
    docs = _split_corpus(tmp_path / "corpus")
    args = ["--input", str(tmp_path / "corpus"), "--output", str(tmp_path / "out"), "--threshold", "-1"]
    args += ["--reference-sets", "gsm_symbolic", "--reference-limit", "5", "--device", "cpu", "--num-shards", "2"]
    read, ids = [], []
    for task in (0, 1):
        assert prefilter.main(args + ["--shard-index", str(task)]) == 0
        part = tmp_path / "out" / f"part-0000{task}-of-00002.jsonl"
        rows = [json.loads(line) for line in part.read_text().splitlines()]
        manifest = json.loads((tmp_path / "out" / "manifests" / f"part-0000{task}-of-00002.json").read_text())
        files = {p.split("corpus/")[1] for p in manifest["corpus_files"]}
        read.append(files)
        # the task saw only the rows of its own files (a row slice would give 7 of 14 to each)
        mine = [t for f in sorted(files) for t in docs[f.split("/")[-1][0]]]  # a.jsonl -> docs["a"]
        assert manifest["counts"]["in"] == len(rows) == len(mine)
        assert sorted(r["text"] for r in rows) == sorted(mine)
        ids += [r["id"] for r in rows]
    assert read == [{"a.jsonl", "c.txt"}, {"b.jsonl.zst", "sub/d.jsonl"}]
    assert len(ids) == len(set(ids)) == 14 and "sub/d.jsonl:4" in ids


def test_hub_stream_shards_by_file(tmp_path):
    """A streamed data set with at least as many files as tasks: each task streams only its own files."""
    import zstandard

    files = []
    for f in range(5):
        path = tmp_path / f"{f:02d}.jsonl.zst"
        lines = "".join(json.dumps({"text": f"file {f} row {k}"}) + "\n" for k in range(3))
        path.write_bytes(zstandard.ZstdCompressor().compress(lines.encode()))
        files.append(str(path))
    for count in (2, 3, 5):
        tasks = [
            [r["text"] for r in prefilter.hub_records("json", "train", "text", i, count, data_files=files)]
            for i in range(count)
        ]
        per_task_files = [{t.split(" row")[0] for t in texts} for texts in tasks]
        assert sum(len(s) for s in per_task_files) == 5, per_task_files  # each file in exactly one task
        assert sorted(t for texts in tasks for t in texts) == sorted(
            f"file {f} row {k}" for f in range(5) for k in range(3)
        )
    # more tasks than files: every task streams everything and keeps every 8th row (warned), still disjoint
    rows = [
        [r["text"] for r in prefilter.hub_records("json", "train", "text", i, 8, data_files=files)] for i in range(8)
    ]
    assert sum(len(r) for r in rows) == 15 and len({t for r in rows for t in r}) == 15

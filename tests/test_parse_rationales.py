import json

from sampling import parse_rationales
from tests.conftest import DOC, REWRITE


def test_parse_stage_writes_triples_and_counts_drops(tmp_path):
    docs = [
        {"id": "d0", "source": "gsm8k", "input": DOC, "output": REWRITE},
        {"id": "d1", "source": "web", "input": DOC, "output": "<BOT>x<EOT> Something else entirely was written."},
        {"id": "d2", "source": "web", "input": DOC, "output": DOC.replace("April.", "April. <BOT>r")},  # no <EOT>
        {"id": "d3", "source": "web", "input": "A. B.", "output": "A. B."},  # no rationale
        {"id": "d4", "source": "web", "input": "A. B.", "output": "A. <BOT> <EOT> B."},  # an empty rationale
    ]
    inp = tmp_path / "extract.jsonl"
    inp.write_text("".join(json.dumps(d) + "\n" for d in docs))
    out = tmp_path / "parsed"
    assert parse_rationales.main(["--input", str(inp), "--output", str(out)]) == 0
    rows = [json.loads(l) for l in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["d0-r1", "d0-r2"]
    assert rows[0]["following"] == "She sold half as many clips in May." and rows[0]["source"] == "gsm8k"
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["docs_unfaithful"] == 1 and counts["triples_malformed"] == 1  # d1; d2's <BOT> without <EOT>
    assert counts["docs_without_rationales"] == 3  # d2 (its only rationale was malformed), d3 and d4
    assert counts["triples_empty"] == 1  # d4
    assert counts["in"] == 5 and counts["out"] == 2

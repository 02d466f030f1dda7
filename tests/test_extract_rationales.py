import json

from common.rationales import faithfulness, split_triples
from sampling import extract_rationales


def read(path):
    return [json.loads(l) for l in (path / "part-00000-of-00001.jsonl").read_text().splitlines()]


def test_rewrite_mode_on_reasoning_sets(tiny_llama_dir, tmp_path):
    out = tmp_path / "extract"
    args = [
        "--datasets",
        "gsm_symbolic",
        "--limit-per-dataset",
        "3",
        "--output",
        str(out),
        "--model",
        tiny_llama_dir,
        "--device",
        "cpu",
        "--max-tokens",
        "12",
    ]
    assert extract_rationales.main(args) == 0
    rows = read(out)
    assert [r["id"] for r in rows] == ["gsm_symbolic-0", "gsm_symbolic-1", "gsm_symbolic-2"]
    assert all(r["family"] == "datasets" and r["input"].startswith("Question: ") and "####" in r["input"] for r in rows)
    assert all(isinstance(r["output"], str) for r in rows)


def test_per_step_mode_is_faithful_by_construction(tiny_llama_dir, tmp_path):
    web = tmp_path / "prefilter.jsonl"
    web.write_text(
        json.dumps(
            {
                "id": "w0",
                "text": "The library closes on Monday. Books go in the drop box. The work takes three weeks.",
                "source": "web",
            }
        )
        + "\n"
    )
    out = tmp_path / "extract"
    assert (
        extract_rationales.main(
            [
                "--input",
                str(web),
                "--output",
                str(out),
                "--model",
                tiny_llama_dir,
                "--device",
                "cpu",
                "--mode",
                "per_step",
                "--step-max-tokens",
                "6",
            ]
        )
        == 0
    )
    [row] = read(out)
    assert row["family"] == "web" and row["mode"] == "per_step"
    assert faithfulness(row["input"], row["output"]) == 1.0
    parsed = split_triples(row["output"])
    assert parsed.malformed == 0 and len(parsed.triples) <= 2
    assert all(t.following in row["input"] for t in parsed.triples)

import json

from common.rationales import faithfulness, split_triples
from sampling import extract_rationales


class Recording:
    """The real backend, with every generate call's prompts, options and completions kept: the subject
    of these tests is what the stage sends and what it does with the answers."""

    def __init__(self, llm):
        self.llm, self.calls = llm, []

    def generate(self, prompts, **kw):
        out = self.llm.generate(prompts, **kw)
        self.calls.append((list(prompts), kw, out))
        return out

    def __getattr__(self, name):
        return getattr(self.llm, name)


def recording(monkeypatch) -> list[Recording]:
    made, real = [], extract_rationales.make_backend
    monkeypatch.setattr(extract_rationales, "make_backend", lambda cfg: made.append(Recording(real(cfg))) or made[-1])
    return made


def read(path):
    return [json.loads(l) for l in (path / "part-00000-of-00001.jsonl").read_text().splitlines()]


def test_rewrite_mode_on_reasoning_sets(tiny_llama_dir, tmp_path, monkeypatch):
    made = recording(monkeypatch)
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
    [(sent, kw, completions)] = made[0].calls  # one batch of 3 documents
    assert kw == {"temperature": 0.0, "max_tokens": 12, "seed": 14}  # rationalyst.md 3.1: greedy, seed 14
    assert [r["output"] for r in rows] == [c.texts[0] for c in completions]  # the model's rewrite, unchanged
    for messages, row in zip(sent, rows):
        # rationalyst.md 3.2: system + 7 few-shot (user = original, assistant = annotated) pairs + the document
        assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 7 + ["user"]
        assert "<BOT>" in messages[0]["content"] and "<EOT>" in messages[0]["content"]
        assert messages[-1] == {"role": "user", "content": row["input"]}
        shots = [(messages[i]["content"], messages[i + 1]["content"]) for i in range(1, 15, 2)]
        for original, annotated in shots:  # each pair is one text, with rationales inserted in the answer only
            assert "<BOT>" not in original and annotated.count("<BOT>") == annotated.count("<EOT>") >= 3
            assert faithfulness(original, annotated) == 1.0
            assert len(split_triples(annotated).triples) == annotated.count("<BOT>")
        # in the spec's order: 3 GSM8K (worked, "#### N"), 2 ECQA (5 choices), 1 MATH (\boxed), 1 MMLU-Pro
        assert [o.startswith("Question: ") for o, _ in shots] == [True] * 7
        assert ["####" in o for o, _ in shots] == [True] * 3 + [False] * 4
        assert ["E - " in o for o, _ in shots] == [False] * 3 + [True] * 2 + [False] * 2
        assert ["\\boxed" in o for o, _ in shots] == [False] * 5 + [True, False]
        assert shots[6][0].count(" - ") == 4 and "The answer is (C)" in shots[6][0]


def test_per_step_mode_is_faithful_by_construction(tiny_llama_dir, tmp_path, monkeypatch):
    made = recording(monkeypatch)
    steps = ["The library closes on Monday.", "Books go in the drop box.", "The work takes three weeks."]
    web = tmp_path / "prefilter.jsonl"
    web.write_text(json.dumps({"id": "w0", "text": " ".join(steps), "source": "web"}) + "\n")
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
    [(sent, kw, completions)] = made[0].calls
    assert kw["max_tokens"] == 6 and kw["stop"] == ["\n"] and kw["temperature"] == 0.0
    # one request per rationale position (before steps 2 and 3); rationale i sees the steps before i only
    assert [m[-1] for m in sent] == [
        {"role": "user", "content": "Text so far:\nThe library closes on Monday."},
        {"role": "user", "content": "Text so far:\nThe library closes on Monday. Books go in the drop box."},
    ]
    assert steps[1] not in json.dumps(sent[0]) and steps[2] not in json.dumps(sent[1])
    for messages in sent:  # system + 3 (text so far, one-sentence rationale) examples + the text so far
        assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
        assert [m["content"] for m in messages[2:7:2]] == [
            "First find how many muffins she baked in the whole day.",
            "Check choice A: does a cupboard keep things cold?",
            "Readers will wonder what to do with borrowed books.",
        ]
        assert all(m["content"].startswith("Text so far:\n") for m in messages[1:8:2])
        assert messages[1]["content"].endswith("How many muffins are left?\nAnswer:")  # the text before it only
    rationales = [" ".join(c.texts[0].split()) for c in completions]
    assert all(rationales)  # the tiny model writes something at both positions: two triples to check
    assert row["output"] == (f"{steps[0]} <BOT>{rationales[0]}<EOT> {steps[1]} <BOT>{rationales[1]}<EOT> {steps[2]}")
    assert faithfulness(row["input"], row["output"]) == 1.0
    parsed = split_triples(row["output"])
    assert parsed.malformed == 0 and [(t.preceding, t.rationale, t.following) for t in parsed.triples] == [
        (steps[0], rationales[0], steps[1]),
        (" ".join(steps[:2]), rationales[1], steps[2]),
    ]

import json

import pytest

from common.tasks.rationalyst import choose_shots, context, hellaswag

ROWS = [  # Rowan/hellaswag validation rows (label a string); the original files have an int label
    {
        "ind": 24,
        "activity_label": "Roof shingle removal",
        "ctx_a": "A man is sitting on a roof.",
        "ctx_b": "he",
        "ctx": "A man is sitting on a roof. he",
        "endings": [
            "is using wrap to wrap a pair of skis.",
            "is ripping level tiles off.",
            "is holding a rubik's cube.",
            "starts pulling up roofing on a roof.",
        ],
        "source_id": "activitynet~v_-JhWjGDPHMY",
        "split": "val",
        "split_type": "indomain",
        "label": "3",
    },
    {
        "ind": 92,
        "activity_label": "Personal Care and Style",
        "ctx_a": "[header] How to dye your hair [title] Wash your hair.",
        "ctx_b": "",
        "ctx": "[header] How to dye your hair [title] Wash your hair.",
        "endings": ["[step] Dry it with a towel.", "Eat the dye.", "Paint the wall.", "Sell the towel."],
        "source_id": "wikihow~1",
        "split": "val",
        "split_type": "zeroshot",
        "label": 0,
    },
]


def test_load_hub_and_original_files(tmp_path):
    (tmp_path / "hellaswag_val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    qs = hellaswag.load("validation", tmp_path)  # original file name, val = validation
    assert [q["answer"] for q in qs] == ["D", "A"]
    assert (
        qs[1]["question"] == "Which ending continues the text most plausibly? Personal Care and Style: "
        "How to dye your hair. Wash your hair."
    )  # wikihow markers cleaned
    assert qs[1]["choices"][0] == "Dry it with a towel."
    assert hellaswag.prefix(qs[0]).endswith("D - starts pulling up roofing on a roof.\nAnswer:")
    (tmp_path / "hellaswag_test.jsonl").write_text(json.dumps(dict(ROWS[0], label="")) + "\n")
    with pytest.raises(ValueError, match="test labels are hidden"):
        hellaswag.load("test", tmp_path)


def test_hand_written_shots():
    shots = choose_shots(hellaswag, hellaswag.shot_pool(), hellaswag.DEFAULT_SHOTS, seed=14)
    assert len(shots[""]) == 4 and len({s["answer"] for s in shots[""]}) == 4
    for s in shots[""]:
        assert hellaswag.shot_steps(s)[-1] == f"The answer is: {s['answer']}" and len(hellaswag.shot_steps(s)) == 5
    q = hellaswag.example(ROWS[0], "hellaswag-validation-0", "t")
    msgs = context(hellaswag, q, shots)
    assert msgs[0]["role"] == "system" and msgs[-1]["content"].startswith(
        "Question: Which ending continues the text most plausibly? Roof shingle removal: A man is sitting on a roof. he"
    )


@pytest.mark.parametrize(
    "output,strict,flexible",
    [
        ("Pulling up roofing fits a man on a roof. The answer is: D", "D", "D"),
        ("The answer is (D).", "D", "D"),
        ("The answer is: starts pulling up roofing on a roof.", None, "D"),
        ("D. He starts pulling up the roofing.", None, "D"),
        ("The answer is E.", None, None),
        ("D", None, "D"),  # issue 12, defect 5: a bare letter
        ("Ending D is the most plausible.", None, "D"),
        ("Ending D is the most plausible, not ending A.", None, "D"),
        ("Endings (A) and (D) both fit.", None, None),
        ("He is on a roof.", None, None),
    ],
)
def test_extraction(output, strict, flexible):
    q = hellaswag.example(ROWS[0], "x", "t")
    assert hellaswag.predict(output, q, "strict") == strict
    assert hellaswag.predict(output, q, "flexible") == flexible
    assert hellaswag.is_correct(flexible, q["answer"]) is (flexible == "D")

import json

import pytest

from common.tasks.choice import LETTERS
from common.tasks.rationalyst import arc, choose_shots, context

HUB_ROWS = [  # allenai/ai2_arc ARC-Challenge rows; some label their options 1-4
    {
        "id": "Mercury_1",
        "question": "Which gas do plants take in to make food?",
        "choices": {"text": ["oxygen", "carbon dioxide", "nitrogen", "helium"], "label": ["A", "B", "C", "D"]},
        "answerKey": "B",
    },
    {
        "id": "NYSEDREGENTS_2",
        "question": "Which is a conductor of electricity?",
        "choices": {"text": ["rubber", "glass", "copper"], "label": ["1", "2", "3"]},
        "answerKey": "3",
    },
]
ORIGINAL_ROW = {
    "id": "Mercury_3",
    "question": {
        "stem": "What causes day and night?",
        "choices": [
            {"text": "Earth's rotation", "label": "A"},
            {"text": "Earth's orbit", "label": "B"},
            {"text": "the Moon's phases", "label": "C"},
            {"text": "clouds", "label": "D"},
            {"text": "tides", "label": "E"},
        ],
    },
    "answerKey": "A",
}


def test_load_hub_rows_and_original_release(tmp_path):
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in HUB_ROWS))
    qs = arc.load("test", tmp_path)
    assert [(q["answer"], len(q["choices"])) for q in qs] == [("B", 4), ("C", 3)]  # "3" -> third letter
    folder = tmp_path / "ARC-Challenge"
    folder.mkdir()
    (folder / "ARC-Challenge-Test.jsonl").write_text(json.dumps(ORIGINAL_ROW) + "\n")
    (folder / "ARC-Challenge-Dev.jsonl").write_text(json.dumps(HUB_ROWS[0]) + "\n")
    [q] = arc.load("test", folder)
    assert q["answer"] == "A" and q["choices"][-1] == "tides" and q["source_id"] == "Mercury_3"
    assert arc.load("validation", folder)[0]["source_id"] == "Mercury_1"  # "Dev" is the validation split
    bad = dict(HUB_ROWS[0], answerKey="Z")
    (tmp_path / "bad.jsonl").write_text(json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match="record 0.*'Z'"):
        arc.load("test", tmp_path / "bad.jsonl")


def test_hand_written_shots_one_step_per_choice():
    assert len(arc.SHOTS) == arc.DEFAULT_SHOTS == 8
    for shot in arc.SHOTS:
        steps = arc.shot_steps(shot)
        assert len(steps) == len(shot["choices"]) + 1
        assert [s[:3] for s in steps[:-1]] == [f"({l})" for l in LETTERS[: len(shot["choices"])]]
        assert steps[-1] == f"The answer is: {shot['answer']}" and arc.states_answer(steps[-1])
        assert not any(arc.states_answer(s) for s in steps[:-1])
    assert len({s["answer"] for s in arc.SHOTS}) == 4  # answers spread over A-D
    q = arc.example(HUB_ROWS[0], "arc-test-0", "t")
    msgs = context(arc, q, choose_shots(arc, arc.shot_pool(), 8, seed=14))
    assert msgs[0]["role"] == "system" and len([m for m in msgs if m["role"] == "user"]) == 9
    assert msgs[1]["content"].startswith("Question: A boy gives a toy car")  # written order kept
    assert msgs[-1]["content"] == (
        "Question: Which gas do plants take in to make food?\nChoices: A - oxygen "
        "B - carbon dioxide C - nitrogen D - helium\nAnswer:"
    )


@pytest.mark.parametrize(
    "output,strict,flexible",
    [
        ("Plants take in carbon dioxide and release oxygen. The answer is: B", "B", "B"),
        ("The correct answer is (B) carbon dioxide.", "B", "B"),
        ("The answer is: **B**", "B", "B"),
        ("Answer: B", None, "B"),
        ("(A) is what plants release, so (B) it is.", None, None),  # names two letters: no guess between them
        ("Plants take in carbon dioxide, (B).", None, "B"),
        ("Oxygen is what plants release, so the answer is not A.", None, None),
        ("The answer is (A) or (B).", None, None),  # hedged
        ("Carbon dioxide is needed for photosynthesis.\nB", None, "B"),  # a bare last line
        ("The answer is E", None, None),  # not among 4 choices
        ("Plants need sunlight.", None, None),
    ],
)
def test_extraction(output, strict, flexible):
    q = arc.example(HUB_ROWS[0], "x", "t")
    assert arc.predict(output, q, "strict") == strict
    assert arc.predict(output, q, "flexible") == flexible
    assert arc.is_correct(flexible, q["answer"]) is (flexible == "B")

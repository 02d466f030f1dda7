import json

import pytest

from common.tasks.rationalyst import choose_shots, context, proofwriter

REFERENCE_LAYOUT = [  # the reference's local proofwriter_test.json: a JSON list, letter answers
    {
        "question": "The bear is kind.",
        "context": "The bear is big. If something is big then it is kind.",
        "answer": "A",
    },
    {
        "question": "Based on the above information, is the following statement true, false, or unknown? "
        "The bear is not big.",
        "context": "The bear is big.",
        "answer": "B",
        "options": ["A) True", "B) False", "C) Unknown"],
        "id": "ProofWriter_x_Q2",
    },  # Logic-LM's layout
]
HUB_LAYOUT = {
    "id": "RelNeg-D5-7",
    "maxD": 5,
    "NFact": 1,
    "NRule": 1,
    "theory": "The mouse is red.",
    "question": "The mouse is young.",
    "answer": "Unknown",
    "QDep": 0,
    "QLen": 1.0,
    "allProofs": "",
    "config": "depth-5",
}


def test_load_reference_and_hub_layouts(tmp_path):
    f = tmp_path / "proofwriter_test.json"
    f.write_text(json.dumps(REFERENCE_LAYOUT))
    qs = proofwriter.load("test", f)
    assert [(q["question"], q["answer"]) for q in qs] == [("The bear is kind.", "A"), ("The bear is not big.", "B")]
    assert proofwriter.prefix(qs[0]) == (
        "Question: Based on the context information, is the following statement true, false, or unknown? "
        "The bear is kind.\nContext: The bear is big. If something is big then it is kind.\n"
        "Choices: A) True B) False C) Unknown\nAnswer:"
    )
    (tmp_path / "test.jsonl").write_text(json.dumps(HUB_LAYOUT) + "\n")
    [q] = proofwriter.load("test", tmp_path / "test.jsonl")
    assert q["answer"] == "C" and q["context"] == "The mouse is red."
    (tmp_path / "bad.json").write_text(json.dumps([dict(HUB_LAYOUT, answer="Maybe")]))
    with pytest.raises(ValueError, match="record 0: answer 'Maybe'"):
        proofwriter.load("test", tmp_path / "bad.json")


def test_three_hand_written_chaining_shots():
    shots = choose_shots(proofwriter, proofwriter.shot_pool(), proofwriter.DEFAULT_SHOTS, seed=14)[""]
    assert [s["answer"] for s in shots] == ["A", "B", "C"]  # true, false, unknown
    for s in shots:
        steps = proofwriter.shot_steps(s)
        assert steps[-1] == f"The answer is: {s['answer']}" and len(steps) >= 3
        assert proofwriter.predict(steps[-1], s, "strict") == s["answer"]
    msgs = context(proofwriter, {"question": "The cow is blue.", "context": "The cow is red."}, {"": shots})
    assert msgs[0]["role"] == "system" and msgs[1]["content"].startswith("Question: Based on the context")
    assert msgs[-1]["content"].endswith(
        "The cow is blue.\nContext: The cow is red.\nChoices: A) True B) False C) Unknown\nAnswer:"
    )


@pytest.mark.parametrize(
    "output,strict,flexible",
    [
        ("The bear is big, so it is kind. The answer is: A", "A", "A"),
        ("So the statement is proved. The answer is (A).", "A", "A"),
        ("The answer is: A) True", "A", "A"),
        ("The answer is True.", "A", "A"),  # the word, mapped to its letter
        ("Nothing settles it, so the answer is unknown.", "C", "C"),
        ("The answer is **False**", "B", "B"),
        ("A. The statement follows from the rules.", None, "A"),
        ("The answer is D", None, None),
        # issue 12, defect 5: the statement's truth value, and "Answer: True"
        ("The bear is big, and big things are kind. The statement is true.", None, "A"),
        ("Answer: True", None, "A"),
        ("Answer: unknown", None, "C"),
        ("So the statement is false. The answer is: A", "A", "A"),  # the stated letter wins
        ("The statement is true or unknown.", None, None),  # hedged
        ("The statement is not false, but it does not follow either.", None, None),
        ("It depends on the bear.", None, None),
    ],
)
def test_extraction(output, strict, flexible):
    assert proofwriter.predict(output, None, "strict") == strict
    assert proofwriter.predict(output, None, "flexible") == flexible
    assert proofwriter.is_correct(proofwriter.predict(output, None), "A") is (flexible == "A")

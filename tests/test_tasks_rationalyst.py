import json

import pytest

from common.tasks.rationalyst import (
    arc,
    competition_math,
    documents,
    ecqa,
    gsm8k,
    mmlu_pro,
    proofwriter,
    reference_texts,
)

GSM8K_ROW = {
    "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
    "clips in May. How many clips did Natalia sell altogether in April and May?",
    "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 "
    "clips altogether in April and May.\n#### 72",
}
ECQA_ROW = {
    "q_no": "1",
    "q_concept": "milk",
    "q_text": "Where do you keep milk cold?",
    "q_op1": "cupboard",
    "q_op2": "fridge",
    "q_op3": "oven",
    "q_op4": "shelf",
    "q_op5": "bag",
    "q_ans": "fridge",
    "taskA_pos": "A fridge keeps food cold.\nMilk spoils when warm.",
    "taskA_neg": "A cupboard is not cold.\nAn oven is hot.\nA shelf is not cold.\nA bag is not cold.",
    "taskB": "Milk must stay cold and a fridge is cold.",
}
ARC_ROW = {
    "id": "Mercury_1",
    "question": "Which is a source of light?",
    "choices": {"text": ["the Moon", "the Sun", "a mirror", "a rock"], "label": ["A", "B", "C", "D"]},
    "answerKey": "B",
}
PROOFWRITER_ROW = {
    "theory": "The cat is red. If something is red then it is big.",
    "question": "The cat is big.",
    "answer": "True",
}
MATH_ROW = {"problem": "What is $1+1$?", "solution": "$1+1=\\boxed{2}$.", "level": "Level 1", "type": "Algebra"}
MMLU_PRO_ROW = {
    "question": "Which gas?",
    "options": ["O2", "N2", "CO2"],
    "answer": "B",
    "answer_index": 1,
    "cot_content": "A: Let's think step by step. Air is mostly nitrogen. The answer is (B).",
    "category": "chemistry",
}


def reference(task, row):
    return task.reference_text(task.example(row, "x", "test"))


def document(task, row):
    return task.document_text(task.example(row, "x", "test"))


def test_reference_texts_per_spec_section_2():
    assert reference(gsm8k, GSM8K_ROW) == GSM8K_ROW["question"] + "\n" + GSM8K_ROW["answer"]
    assert reference(ecqa, ECQA_ROW).endswith("shelf\nbag")  # all five options (7.8 fixed)
    assert reference(arc, ARC_ROW) == "Which is a source of light?\nthe Moon\nthe Sun\na mirror\na rock"
    assert (
        reference(proofwriter, PROOFWRITER_ROW)
        == "The cat is big.\nThe cat is red. If something is red then it is big."
    )


def test_documents_per_spec_section_3_2():
    assert document(gsm8k, GSM8K_ROW).startswith("Question: Natalia") and document(gsm8k, GSM8K_ROW).endswith("#### 72")
    ecqa_doc = document(ecqa, ECQA_ROW)
    assert "Choices: A - cupboard B - fridge C - oven D - shelf E - bag" in ecqa_doc
    # positives spliced in at the gold option's place (B = index 1), then the answer letter
    assert (
        "Answer: A cupboard is not cold. A fridge keeps food cold. Milk spoils when warm. An oven is hot." in ecqa_doc
    ) and ecqa_doc.endswith("The answer is B")
    assert document(competition_math, MATH_ROW) == "Question: What is $1+1$?\nAnswer: $1+1=\\boxed{2}$."
    assert document(mmlu_pro, MMLU_PRO_ROW).endswith("The answer is (B).")
    assert "Choices: A - O2 B - N2 C - CO2" in document(mmlu_pro, MMLU_PRO_ROW)


def test_local_files_and_generator(tmp_path):
    f = tmp_path / "ecqa.jsonl"
    f.write_text(json.dumps(ECQA_ROW) + "\n")
    docs = list(documents([f"ecqa={f}"]))
    assert docs == [{"id": "ecqa-0", "source": "ecqa", "text": document(ecqa, ECQA_ROW)}]
    gen = list(documents(["gsm_symbolic"], limit=3))
    assert len(gen) == 3 and all("####" in g["text"] for g in gen)
    assert gen == list(documents(["gsm_symbolic"], limit=3))  # seeded
    assert [t.split("\n")[0] for t in reference_texts(["gsm_symbolic"], limit=3)] == [
        g["text"].split("\n")[0][len("Question: ") :] for g in gen
    ]
    with pytest.raises(ValueError, match="unknown task"):
        list(documents(["gsm9k"]))

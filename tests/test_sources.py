import json

import pytest

from sampling import sources

GSM8K_ROW = {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
                         "clips in May. How many clips did Natalia sell altogether in April and May?",
             "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 "
                       "clips altogether in April and May.\n#### 72"}
ECQA_ROW = {"q_no": "1", "q_concept": "milk", "q_text": "Where do you keep milk cold?", "q_op1": "cupboard",
            "q_op2": "fridge", "q_op3": "oven", "q_op4": "shelf", "q_op5": "bag", "q_ans": "fridge",
            "taskA_pos": "A fridge keeps food cold.\nMilk spoils when warm.",
            "taskA_neg": "A cupboard is not cold.\nAn oven is hot.\nA shelf is not cold.\nA bag is not cold.",
            "taskB": "Milk must stay cold and a fridge is cold."}
ARC_ROW = {"id": "Mercury_1", "question": "Which is a source of light?",
           "choices": {"text": ["the Moon", "the Sun", "a mirror", "a rock"], "label": ["A", "B", "C", "D"]},
           "answerKey": "B"}
PROOFWRITER_ROW = {"theory": "The cat is red. If something is red then it is big.", "question": "The cat is big.",
                   "answer": "True"}
MATH_ROW = {"problem": "What is $1+1$?", "solution": "$1+1=\\boxed{2}$.", "level": "Level 1", "type": "Algebra"}
MMLU_PRO_ROW = {"question": "Which gas?", "options": ["O2", "N2", "CO2"], "answer": "B", "answer_index": 1,
                "cot_content": "A: Let's think step by step. Air is mostly nitrogen. The answer is (B).",
                "category": "chemistry"}


def test_reference_texts_per_spec_section_2():
    t = sources.REFERENCE_TEXT
    assert t["gsm8k"](GSM8K_ROW) == GSM8K_ROW["question"] + "\n" + GSM8K_ROW["answer"]
    assert t["ecqa"](ECQA_ROW).endswith("shelf\nbag")                     # all five options (7.8 fixed)
    assert t["arc_challenge"](ARC_ROW) == "Which is a source of light?\nthe Moon\nthe Sun\na mirror\na rock"
    assert t["proofwriter"](PROOFWRITER_ROW) == "The cat is big.\nThe cat is red. If something is red then it is big."


def test_documents_per_spec_section_3_2():
    d = sources.DOCUMENT_TEXT
    assert d["gsm8k"](GSM8K_ROW).startswith("Question: Natalia") and d["gsm8k"](GSM8K_ROW).endswith("#### 72")
    ecqa = d["ecqa"](ECQA_ROW)
    assert "Choices: A - cupboard B - fridge C - oven D - shelf E - bag" in ecqa
    # positives spliced in at the gold option's place (B = index 1), then the answer letter
    assert ("Answer: A cupboard is not cold. A fridge keeps food cold. Milk spoils when warm. An oven is hot."
            in ecqa) and ecqa.endswith("The answer is B")
    assert d["math"](MATH_ROW) == "Question: What is $1+1$?\nAnswer: $1+1=\\boxed{2}$."
    assert d["mmlu_pro"](MMLU_PRO_ROW).endswith("The answer is (B).")
    assert "Choices: A - O2 B - N2 C - CO2" in d["mmlu_pro"](MMLU_PRO_ROW)


def test_local_files_and_generator(tmp_path):
    f = tmp_path / "ecqa.jsonl"
    f.write_text(json.dumps(ECQA_ROW) + "\n")
    docs = list(sources.documents([f"ecqa={f}"]))
    assert docs == [{"id": "ecqa-0", "source": "ecqa", "text": sources.DOCUMENT_TEXT["ecqa"](ECQA_ROW)}]
    gen = list(sources.documents(["gsm_symbolic"], limit=3, seed=1))
    assert len(gen) == 3 and all("####" in g["text"] for g in gen)
    assert gen == list(sources.documents(["gsm_symbolic"], limit=3, seed=1))      # seeded
    with pytest.raises(ValueError, match="unknown source"):
        list(sources.documents(["gsm9k"]))

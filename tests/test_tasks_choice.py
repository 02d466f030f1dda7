import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.tasks.choice import extract_choice, read_row
from common.tasks.rationalyst import arc, ecqa, hellaswag, mmlu_pro, proofwriter
from tests.conftest import shared_data


@pytest.mark.parametrize(
    "output,letters,strict,flexible",
    [
        ("A bank is a place for money. A river bank has water. The answer is B", "ABCDE", "B", "B"),
        ("Let's check each choice. The answer is (C).", "ABCDE", "C", "C"),
        ("The answer is: D.", "ABCDE", "D", "D"),
        ("Dry air is mostly nitrogen. The answer is (C).", "ABCDEFGHIJ", "C", "C"),  # MMLU-Pro style
        ("So the correct answer is **E**", "ABCDE", "E", "E"),
        ("B. Because refrigerators keep food cold.", "ABCDE", None, "B"),  # the reference failed "B."
        ("(A) is wrong, (D) is right", "ABCDE", None, None),  # two letters named: no answer rather than a guess
        ("I think it is C) the oven", "ABCDE", None, "C"),
        ("The statement is true, so the answer is A", "ABC", "A", "A"),  # ProofWriter A/B/C
        ("I am not sure which one.", "ABCDE", None, None),  # never a random letter
        ("A person would go to a bank.", "ABCDE", None, None),  # article "A", not a choice
        ("The answer is F", "ABCDE", None, None),  # out of range
        ("So the answer is a bank by the river.", "ABCDE", None, None),  # "a" is an article
        ("Answer: C", "ABCDEFGHIJ", None, "C"),  # MMLU-Pro's own format
        ("Answer: A person would know.", "ABCDE", None, None),
        # issue 12, defect 3: a capital letter in prose is no answer
        ("Scurvy is caused by a lack of vitamin C.", "ABCDE", None, None),
        ("Water boils at 100 °C.", "ABCDE", None, None),
        ("The answer is not A.", "ABCDE", None, None),
        ("The answer is (A) or (B).", "ABCDE", None, None),  # hedged
        ("It could be (A) or (B), I am not sure.", "ABCDE", None, None),
        ("The answer is A or B, depending on the season.", "ABCDE", None, None),
        ("The answer is not (A); it is (C).", "ABCDE", None, "C"),
        ("Plants make food in the leaves, so (A) is out and the answer is (C).", "ABCDE", "C", "C"),
        # bare final-line answers, where the prompt asks for a letter
        ("B", "ABCDE", None, "B"),
        ("Milk spoils when it is warm.\nB", "ABCDE", None, "B"),
        ("Answer: c", "ABCDE", None, "C"),
        ("**Answer:** (D)", "ABCDE", None, "D"),
        ("Option B", "ABCDE", None, "B"),
        ("A fridge keeps food cold, which matches option B.", "ABCDE", None, "B"),
        ("The answer is **Option C**.", "ABCDE", "C", "C"),
        ("The answer is B, a refrigerator.", "ABCDE", "B", "B"),
        ("Final answer: E", "ABCDE", None, "E"),
    ],
)
def test_extract_choice(output, letters, strict, flexible):
    assert extract_choice(output, letters, "strict") == strict
    assert extract_choice(output, letters, "flexible") == flexible


def test_option_text_after_the_answer_phrase():
    options = ["oven", "refrigerator", "shelf"]
    assert extract_choice("The answer is: Refrigerator.", "ABC", "flexible", options) == "B"
    assert extract_choice("The answer is: Refrigerator.", "ABC", "strict", options) is None
    assert extract_choice("The answer is: a cold place.", "ABC", "flexible", options) is None


def test_read_row_names_the_record():
    with pytest.raises(ValueError, match="f.jsonl record 3: not a multiple-choice row"):
        read_row({"question": "q?"}, "f.jsonl record 3")


# ------------------------------------------------------------------ no letter that is not an answer in the text

CHOICE_TASKS = [
    (ecqa, {"choices": ["oven", "refrigerator", "shelf", "car", "garden"]}),
    (arc, {"choices": ["oxygen", "carbon dioxide", "nitrogen", "helium"]}),
    (hellaswag, {"choices": ["a", "b", "c", "d"]}),
    (mmlu_pro, {"choices": [f"option {i}" for i in range(10)]}),
    (proofwriter, None),
]


def answer_free_texts() -> list[str]:
    """Real text with capital letters, labels and options but no answer to a multiple-choice question: GSM8K
    solutions ("class C.", "route B", "the price of one apple (A)"), Moral Stories ("improves to an A.")."""
    texts = [json.loads(line)["answer"] for line in (shared_data("gsm8k") / "train.jsonl").open()]
    for name in ("actor_dev.json", "actor_test.json"):
        for row in json.loads((shared_data("refiner/moral_stories") / name).read_text()):
            texts += [row["actor_input"], row["actor_output"]]
    return texts


def test_no_answer_from_answer_free_text():
    texts = answer_free_texts()
    assert len(texts) > 10000
    for task, example in CHOICE_TASKS:
        found = [(t[-80:], a) for t in texts if (a := task.predict(t, example, "flexible")) is not None]
        assert not found, f"{task.__name__}: {len(found)} letters from text with no answer, e.g. {found[:3]}"


def test_no_answer_from_a_question_listing_its_options():
    """PRMBench's MATH questions list their options "(A) 30 ... (E) 63": a list of options is not an answer."""
    rows = [json.loads(line) for line in (shared_data("prmbench") / "prmbench_subset400.jsonl").open()]
    listing = [r["question"] for r in rows if re.search(r"\(A\).*\(B\)", r["question"], re.DOTALL)]
    assert listing
    for q in listing:
        assert extract_choice(q, "ABCDE", "flexible") is None, q


FRAGMENTS = st.sampled_from(
    [
        "The answer is",
        "the correct answer is",
        "Answer:",
        " not",
        " or",
        " and",
        "(",
        ")",
        ".",
        ",",
        ":",
        "**",
        "\n",
        " ",
        "option",
        "ending",
        "It is",
        "vitamin",
        "a",
        "I",
        "A",
        "B",
        "C",
        "D",
        "E",
        "J",
        "c",
        "true",
        "False",
        "refrigerator",
        "100 °C",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(FRAGMENTS, max_size=14).map("".join))
def test_a_letter_returned_occurs_as_a_letter_of_the_text(text):
    """Whatever the text, an extractor returns None or a letter standing alone in it (no guess, no letter
    from inside a word); option texts and ProofWriter's words are the mapped exceptions, tested above."""
    for letters in ("ABC", "ABCD", "ABCDE", "ABCDEFGHIJ"):
        for mode in ("strict", "flexible"):
            got = extract_choice(text, letters, mode)
            assert got is None or (
                got in letters and re.search(rf"(?<![A-Za-z]){got}(?![A-Za-z])", text, re.IGNORECASE)
            ), (text, letters, mode, got)


def test_the_tasks_own_answers_are_read_back():
    """Gold answers as the tasks themselves write them (few-shot last steps, extraction documents) score as
    correct against themselves."""
    for task in (arc, hellaswag, proofwriter):
        for shot in task.shot_pool():
            last = task.shot_steps(shot)[-1]
            assert task.is_correct(task.predict(last, shot, "strict"), shot["answer"]), last
            doc = task.document_text(shot)
            assert task.is_correct(task.predict(doc, shot, "flexible"), shot["answer"]), doc

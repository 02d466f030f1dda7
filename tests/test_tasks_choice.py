import pytest

from common.tasks.choice import extract_choice, read_row


@pytest.mark.parametrize(
    "output,letters,strict,flexible",
    [
        ("A bank is a place for money. A river bank has water. The answer is B", "ABCDE", "B", "B"),
        ("Let's check each choice. The answer is (C).", "ABCDE", "C", "C"),
        ("The answer is: D.", "ABCDE", "D", "D"),
        ("Dry air is mostly nitrogen. The answer is (C).", "ABCDEFGHIJ", "C", "C"),  # MMLU-Pro style
        ("So the correct answer is **E**", "ABCDE", "E", "E"),
        ("B. Because refrigerators keep food cold.", "ABCDE", None, "B"),  # the reference failed "B."
        ("(A) is wrong, (D) is right", "ABCDE", None, "D"),
        ("I think it is C) the oven", "ABCDE", None, "C"),
        ("The statement is true, so the answer is A", "ABC", "A", "A"),  # ProofWriter A/B/C
        ("I am not sure which one.", "ABCDE", None, None),  # never a random letter
        ("A person would go to a bank.", "ABCDE", None, None),  # article "A", not a choice
        ("The answer is F", "ABCDE", None, None),  # out of range
        ("So the answer is a bank by the river.", "ABCDE", None, None),  # "a" is an article
        ("Answer: C", "ABCDEFGHIJ", None, "C"),  # MMLU-Pro's own format
        ("Answer: A person would know.", "ABCDE", None, None),
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

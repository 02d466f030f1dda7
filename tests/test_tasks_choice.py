import pytest

from common.tasks.choice import extract_choice


@pytest.mark.parametrize("output,letters,strict,flexible", [
    ("A bank is a place for money. A river bank has water. The answer is B", "ABCDE", "B", "B"),
    ("Let's check each choice. The answer is (C).", "ABCDE", "C", "C"),
    ("The answer is: D.", "ABCDE", "D", "D"),
    ("Dry air is mostly nitrogen. The answer is (C).", "ABCDEFGHIJ", "C", "C"),          # MMLU-Pro style
    ("So the correct answer is **E**", "ABCDE", "E", "E"),
    ("B. Because refrigerators keep food cold.", "ABCDE", None, "B"),                   # the reference failed "B."
    ("(A) is wrong, (D) is right", "ABCDE", None, "D"),
    ("I think it is C) the oven", "ABCDE", None, "C"),
    ("The statement is true, so the answer is A", "ABC", "A", "A"),                    # ProofWriter A/B/C
    ("I am not sure which one.", "ABCDE", None, None),                                  # never a random letter
    ("A person would go to a bank.", "ABCDE", None, None),                              # article "A", not a choice
    ("The answer is F", "ABCDE", None, None),                                           # out of range
])
def test_extract_choice(output, letters, strict, flexible):
    assert extract_choice(output, letters, "strict") == strict
    assert extract_choice(output, letters, "flexible") == flexible

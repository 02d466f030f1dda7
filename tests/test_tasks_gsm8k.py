import json

import pytest

from common.tasks.answers import normalize_number
from common.tasks.rationalyst import get_task, gsm8k, system_prompt
from tests.conftest import shared_data


@pytest.mark.parametrize(
    "text,want",
    [
        ("1,234.50", "1234.5"),
        ("$12", "12"),
        ("-3", "-3"),
        ("12.0", "12"),
        ("0.50", "0.5"),
        ("72.", "72"),
        ("+5", "5"),
        ("$-3", "-3"),
        ("-$3", "-3"),
        ("-0", "0"),
        ("abc", None),
        ("1e3", "1000"),
    ],
)
def test_normalize_number(text, want):
    assert normalize_number(text) == want


@pytest.mark.parametrize(
    "output,strict,flexible",
    [
        ("Natalia sold 48/2 = 24 clips in May.\nAltogether 48+24 = 72 clips.\n#### 72", "72", "72"),
        ("She has $1,250.75 left.\n#### 1,250.75", "1250.75", "1250.75"),
        ("So the total cost is $0.50 per apple. The answer is 2.5.", "2.5", "2.5"),  # decimals kept
        ("The final answer is: **-7**", "-7", "-7"),
        ("Each box holds 12 eggs, so 3 boxes hold 36 eggs.", None, "36"),
        ("Pages 3-4 were read, total 4 pages", None, "4"),  # a hyphen is not a sign
        ("The temperature fell to -5 degrees.", None, "-5"),
        ("I do not know.", None, None),
        ("The answer is 18. Wait, #### 20", "20", "20"),
        # issue 12, defect 4: a sign after the dollar, or a plus sign
        ("He is $10 short, so his balance is -$10. The answer is $-10.", "-10", "-10"),
        ("She owes 10 dollars.\n#### $-10", "-10", "-10"),
        ("The temperature rose by 18 degrees. The answer is +18", "18", "18"),
        ("3+4 = 7 apples, so 3-4 is not it", None, "4"),  # "+4" and "-4" in "3+4", "3-4" are no signs
    ],
)
def test_extract_answer(output, strict, flexible):
    assert gsm8k.extract_answer(output, "strict") == strict
    assert gsm8k.extract_answer(output, "flexible") == flexible


def test_scoring_compares_numbers():
    assert gsm8k.is_correct("72.0", "72") and gsm8k.is_correct("$1,000", "1000")
    assert not gsm8k.is_correct(None, "72") and not gsm8k.is_correct("7.2", "72")
    assert get_task("gsm8k") is gsm8k
    with pytest.raises(ValueError, match="unknown task"):
        get_task("gsm9k")


def test_strip_calculator():
    assert gsm8k.strip_calculator("48/2 = <<48/2=24>>24 clips") == "48/2 = 24 clips"


def test_load_original_files():
    folder = shared_data("gsm8k")
    test = gsm8k.load("test", folder)
    train = gsm8k.load("train", folder / "train.jsonl")
    assert len(test) == 1319 and len(train) == 7473
    assert test[0]["id"] == "gsm8k-test-0" and test[0]["answer"] == "18"  # Janet's ducks
    assert all(ex["answer"] is not None for ex in train)
    assert len(gsm8k.load("test", folder, limit=5)) == 5


def test_bad_local_file_names_file_and_line(tmp_path):
    f = tmp_path / "test.jsonl"
    f.write_text('{"question": "q", "answer": "#### 1"}\n{"question": "q"}\n')
    with pytest.raises(ValueError, match=r"test\.jsonl:2: missing field\(s\) answer"):
        gsm8k.load("test", tmp_path)


def test_inference_interface():
    ex = {"question": "Tom has 3 boxes of 4. How many?", "solution": "3*4=<<3*4=12>>12\nSo 12 in all\n#### 12"}
    assert gsm8k.prefix(ex) == "Question: Tom has 3 boxes of 4. How many?\nAnswer:"
    assert gsm8k.shot_steps(ex) == ["3*4=12.", "So 12 in all.", "The answer is: 12."]  # rationalyst.md 6.2
    assert system_prompt(gsm8k, ex) is None and gsm8k.predict("The answer is: 12.", ex, "strict") == "12"


def test_every_gold_answer_reads_back_as_correct():
    """All GSM8K train and test gold answers parse, equal the plain reading of their '#### N' line, and score
    as correct against themselves in both modes."""
    folder = shared_data("gsm8k")
    for split in ("train", "test"):
        for ex in gsm8k.load(split, folder):
            plain = ex["solution"].rsplit("####", 1)[1].strip().replace(",", "")
            assert ex["answer"] == plain, (ex["id"], ex["answer"], plain)
            for mode in ("strict", "flexible"):
                assert gsm8k.is_correct(gsm8k.predict(ex["solution"], ex, mode), ex["answer"]), (ex["id"], mode)


def test_agrees_with_openai_labels_on_their_model_solutions():
    """OpenAI's example solutions of four GSM8K generators carry an is_correct label; flexible extraction
    ("A: 18" endings, not the '#### N' of the prompts) and scoring agree with every one of the 400."""
    rows = [json.loads(line) for line in (shared_data("gsm8k") / "example_model_solutions_first100.jsonl").open()]
    verdicts = []
    for row in rows:
        gold = gsm8k.extract_answer(row["ground_truth"], "flexible")
        for name in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
            got = gsm8k.is_correct(gsm8k.predict(row[name]["solution"], row, "flexible"), gold)
            verdicts.append(got == row[name]["is_correct"])
    assert len(verdicts) == 400 and all(verdicts)

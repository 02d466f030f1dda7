from common import prompts
from common.rationales import faithfulness, split_triples

ALL_SHOTS = (
    prompts.GSM8K_SHOTS
    + prompts.ECQA_SHOTS
    + [prompts.MATH_SHOT, prompts.MMLU_PRO_SHOT]
    + prompts.WEB_SHOTS
    + prompts.GSM8K_WEB_SHOTS
)


def test_every_few_shot_pair_parses_back_to_its_original():
    for original, annotated in ALL_SHOTS:
        assert "<BOT>" not in original and "{r}" not in original and "{r}" not in annotated
        assert faithfulness(original, annotated) == 1.0
        parsed = split_triples(annotated)
        assert parsed.malformed == 0 and annotated.count("<BOT>") == annotated.count("<EOT>")
        assert len(parsed.triples) + parsed.empty == annotated.count("<BOT>")
    code_original = prompts.WEB_SHOTS[1][0]
    assert "return {}\n    with open" in code_original and "\n    \n" not in code_original


def test_prompt_layouts_follow_the_spec():
    msgs = prompts.datasets_prompt("Question: q\nAnswer: a")
    assert [m["role"] for m in msgs] == ["system"] + ["user", "assistant"] * 7 + ["user"]  # 3.2: 7 pairs
    assert msgs[-1]["content"] == "Question: q\nAnswer: a" and msgs[0]["content"] == prompts.SYSTEM_DATASETS
    users = [m["content"] for m in msgs[1:-1:2]]
    assert "muffins" in users[0] and "Choices:" in users[3] and "boxed" in msgs[12]["content"]
    assert "Earth's atmosphere" in users[6]  # order: 3,2,1,1
    web = prompts.web_prompt("Some web text.")
    assert [m["role"] for m in web] == ["system"] + ["user", "assistant"] * 7 + ["user"]  # 3.3: 3+2+2
    assert web[0]["content"] == prompts.SYSTEM_WEB and "library" in web[1]["content"]
    assert "final answer" in web[-2]["content"]  # the GSM8K pairs announce the final answer


def test_per_step_prompt_never_shows_the_next_step():
    text = "Tom has 3 boxes. Each box has 4 apples. So he has 12 apples."
    steps = prompts.split_steps(text)
    assert "".join(steps) == text and len(steps) == 3
    msgs = prompts.step_prompt("".join(steps[:1]))
    assert msgs[-1]["content"] == "Text so far:\nTom has 3 boxes." and "apples" not in msgs[-1]["content"]
    for user, assistant in zip(msgs[1:-1:2], msgs[2:-1:2]):
        assert user["role"] == "user" and assistant["role"] == "assistant" and "<BOT>" not in assistant["content"]

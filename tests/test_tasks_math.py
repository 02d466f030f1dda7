import json

import pytest

from common.tasks.rationalyst import choose_shots, context, get_task
from common.tasks.rationalyst import competition_math as m

ROWS = [
    {
        "problem": "What is $\\frac{1}{2} + \\frac{1}{4}$?",
        "level": "Level 1",
        "type": "Prealgebra",
        "solution": "We have $\\frac{1}{2} = \\frac{2}{4}$. So the sum is $\\frac{2}{4} + \\frac{1}{4} = \\boxed{\\frac{3}{4}}$.",
    },
    {
        "problem": "Solve $2x + 3 = 11$.",
        "level": "Level 2",
        "type": "Algebra",
        "solution": "Subtract 3 from both sides to get $2x = 8$. Divide by 2. Then $x = \\boxed{4}$.",
    },
    {
        "problem": "How many degrees are in each angle of an equilateral triangle?",
        "level": "Level 1",
        "type": "Geometry",
        "solution": "The angles sum to $180^\\circ$ and are equal, so each is $\\boxed{60^\\circ}$.",
    },
]


def write_original_release(root):
    """MATH's original layout: MATH/{train,test}/<subject>/<n>.json, one problem per file."""
    for split in ("train", "test"):
        for i, row in enumerate(ROWS):
            folder = root / split / row["type"].lower()
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}.json").write_text(json.dumps(row))
    return root


def test_load_original_folder_and_jsonl(tmp_path):
    exs = m.load("test", write_original_release(tmp_path / "MATH"))
    assert sorted(e["answer"] for e in exs) == ["4", "60", "\\frac{3}{4}"]
    assert {e["id"] for e in exs} == {"math-test-0", "math-test-1", "math-test-2"}
    f = tmp_path / "test.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert [e["answer"] for e in m.load("test", f, limit=2)] == ["\\frac{3}{4}", "4"]
    (tmp_path / "bad.jsonl").write_text(json.dumps({"problem": "p", "solution": "no box here"}) + "\n")
    with pytest.raises(ValueError, match="record 0: no \\\\boxed"):
        m.load("test", tmp_path / "bad.jsonl")


def test_few_shot_layout(tmp_path):
    task = get_task("math")
    pool = task.shot_pool(write_original_release(tmp_path / "MATH"))
    shots = choose_shots(task, pool, 5, seed=14)
    msgs = context(task, {"question": "What is 1+1?"}, shots)
    assert msgs[0] == {"role": "system", "content": m.SYSTEM} and "\\boxed{}" in m.SYSTEM
    assert msgs[-1] == {"role": "user", "content": "Question: What is 1+1?\nAnswer:"}
    solve = msgs.index({"role": "user", "content": "Question: Solve $2x + 3 = 11$.\nAnswer:"})
    # 6.2: the solution split on ". ", one assistant turn per piece
    assert [x["content"] for x in msgs[solve + 1 : solve + 4]] == [
        "Subtract 3 from both sides to get $2x = 8$.",
        "Divide by 2.",
        "Then $x = \\boxed{4}$.",
    ]
    assert sum(x["role"] == "user" for x in msgs) == 4  # 3 shots (all the pool has) + the question


@pytest.mark.parametrize(
    "text,strict,flexible",
    [
        ("So the total is $\\boxed{\\dfrac{3}{4}}$.", "\\frac{3}{4}", "\\frac{3}{4}"),
        ("Each angle measures $\\boxed{60^\\circ}$.", "60", "60"),
        ("Thus $x = \\boxed{x=4}$", "4", "4"),
        ("The area is \\boxed{12\\text{ square units}}.", "12", "12"),
        ("We get $\\boxed{\\left( 1, -\\frac12 \\right)}$.", "(1,-\\frac{1}{2})", "(1,-\\frac{1}{2})"),
        ("Earlier I wrote \\boxed{5}, but correcting, the result is \\boxed{7}.", "7", "7"),
        ("The answer is $\\frac{5}{2}$.", None, "\\frac{5}{2}"),
        ("I could not finish the problem.", None, None),
        ("The result is \\boxed{3", None, None),  # unclosed
    ],
)
def test_extraction(text, strict, flexible):
    assert m.predict(text, None, "strict") == strict
    assert m.predict(text, None, "flexible") == flexible


@pytest.mark.parametrize(
    "prediction,gold,want",
    [
        ("\\frac{3}{4}", "\\frac34", True),
        ("0.75", "\\frac{3}{4}", True),
        ("3/4", "\\dfrac{3}{4}", True),
        ("-\\frac{1}{2}", "-0.5", True),
        ("1,000", "1000", True),
        ("10\\%", "10", True),
        ("\\$5.00", "5", True),
        ("2\\sqrt3", "2\\sqrt{3}", True),
        ("\\text{(B)}", "(B)", True),
        ("x = 4", "4", True),
        ("60°", "60^{\\circ}", True),
        ("\\sqrt[3]{2}", "\\sqrt[3]{2}", True),
        ("\\sqrt[3]{2}", "\\sqrt{2}", False),
        ("\\frac{3}{5}", "\\frac{3}{4}", False),
        ("4.5", "4", False),
        ("(1,2)", "(2,1)", False),
        (None, "4", False),
        ("", "4", False),
    ],
)
def test_scoring_is_equivalence_not_eval(prediction, gold, want):
    assert m.is_correct(prediction, gold) is want


def test_never_evaluates_text():
    # would be True if run as Python; here it is a string that is not a plain rational
    assert not m.is_correct("2+2", "4") and not m.is_correct("__import__('os')", "0")
    assert m.states_answer("Hence $x = \\boxed{4}$.") and not m.states_answer("Subtract 3 from both sides.")

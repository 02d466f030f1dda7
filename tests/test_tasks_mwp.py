import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.tasks.refiner import mwp
from tests.conftest import shared_data

# ----------------------------------------------------------------------------- evaluator


def test_execute_examples():
    z = "#0: multiply ( number1, number2 ) | #1: substract ( number0, #0 ) |  EOS"  # the spec's example
    assert mwp.execute(z, [25000.0, 1500.0, 8.0]) == 13000.0
    assert mwp.execute("number0 EOS", [7.0]) == 7.0
    assert mwp.execute("#0: divide ( number0, 100.0 ) |  <END>", [50.0]) == 0.5
    assert mwp.normalize("#0: substract ( number1,  #0 ) |  <END>") == "#0: subtract ( number1, #0 ) | EOS"


@pytest.mark.parametrize(
    "z,numbers,error",
    [
        ("#0: power ( number0, number1 ) | EOS", [1.0, 2.0], "unknown operator"),
        ("#0: add ( number0, number5 ) | EOS", [1.0, 2.0], "has 2 numbers"),
        ("#0: add ( number0, #1 ) | EOS", [1.0, 2.0], "not yet computed"),
        ("#1: add ( number0, number1 ) | EOS", [1.0, 2.0], "numbered #1"),
        ("#0: divide ( number0, number1 ) | EOS", [1.0, 0.0], "division by zero"),
        ("#0: add ( __import__('os'), number1 ) | EOS", [1.0, 2.0], "not `#k: op"),
        ("#0: add number0 number1 | EOS", [1.0, 2.0], "not `#k: op"),
        ("EOS", [], "empty"),
        ("#0: subtract ( +, number1 ) | EOS", [1.0, 2.0], "bad operand"),
    ],
)
def test_malformed_formulas_raise(z, numbers, error):
    with pytest.raises(mwp.FormulaError, match=error):
        mwp.execute(z, numbers)


def test_malformed_formulas_of_any_size_give_formula_error_fast():
    # issue 13.5: int() refuses over 4,300 digits (a ValueError that crashed metrics() and the oracle), the
    # comma regex was quadratic on runs of spaces, prefix_to_linear recursed
    import time

    digits = "9" * 5000
    ex = {"id": "a", "x": "", "z": "#0: add ( number0, number1 ) | EOS", "numbers": [1.0, 2.0], "answer": 3.0}
    for z in (
        f"#0: add ( number{digits}, number1 ) | EOS",
        f"#0: add ( number0, #{digits} ) | EOS",
        f"#{digits}: add ( number0, number1 ) | EOS",
        f"#0: add ( number0, {digits} ) | EOS",
        f"number{digits} EOS",
    ):
        with pytest.raises(mwp.FormulaError):
            mwp.execute(z, [1.0, 2.0])
        assert mwp.metrics([ex], [z])["equation_em"] == 0.0
        assert mwp.oracle_feedback(z, ex["z"]).startswith("add an operator. the operator in #0")  # unreadable
    started = time.perf_counter()
    spaces = "#0: add ( number0" + " " * 200_000 + "x, number1 ) | EOS"
    with pytest.raises(mwp.FormulaError):
        mwp.parse(spaces)
    assert mwp.normalize("a" + " " * 200_000 + ", b") == "a, b"
    deep = "+ " * 5000 + "number0 " * 5001
    linear = mwp.prefix_to_linear(deep)
    assert linear.count("|") == 5000 and mwp.execute(linear, [1.0]) == 5001.0
    with pytest.raises(mwp.FormulaError, match="ends early"):
        mwp.prefix_to_linear("+ " * 5000 + "number0")
    assert time.perf_counter() - started < 2.0


def trees(max_numbers=4):
    leaf = st.one_of(
        st.integers(0, max_numbers - 1).map(lambda n: f"number{n}"), st.sampled_from(["1.0", "100.0", "0.5"])
    )
    return st.recursive(leaf, lambda kids: st.tuples(st.sampled_from("+-*/"), kids, kids), max_leaves=6)


def prefix_of(tree) -> str:
    return tree if isinstance(tree, str) else f"{tree[0]} {prefix_of(tree[1])} {prefix_of(tree[2])}"


def value_of(tree, numbers):
    """Direct recursive arithmetic on the tree: the reference value for the properties."""
    if isinstance(tree, str):
        return numbers[int(tree[6:])] if tree.startswith("number") else float(tree)
    a, b = value_of(tree[1], numbers), value_of(tree[2], numbers)
    if tree[0] == "/" and b == 0:
        raise ZeroDivisionError
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0}[tree[0]]


@settings(max_examples=300, deadline=None)
@given(trees(), st.lists(st.floats(-1000, 1000, allow_nan=False).map(lambda x: round(x, 2)), min_size=4, max_size=4))
def test_linear_form_of_a_random_prefix_equation_computes_the_same_value(tree, numbers):
    linear = mwp.prefix_to_linear(prefix_of(tree))
    try:
        want = value_of(tree, numbers)
    except ZeroDivisionError:
        with pytest.raises(mwp.FormulaError, match="division by zero"):
            mwp.execute(linear, numbers)
        return
    assert mwp.answers_match(mwp.execute(linear, numbers), want, rel=1e-9)
    assert mwp.parse(linear) == mwp.parse(mwp.normalize(linear.replace(" ", "  ")))  # spacing-insensitive
    assert mwp.oracle_feedback(linear, linear) == mwp.NO_HINT


def test_prefix_to_linear_examples_and_errors():
    # the reference converter's documented cases, and one it got wrong on the val file
    assert (
        mwp.prefix_to_linear("- + number1 number2 number3")
        == "#0: add ( number1, number2 ) | #1: subtract ( #0, number3 ) | EOS"
    )
    assert (
        mwp.prefix_to_linear("- number1 + number2 number3")
        == "#0: add ( number2, number3 ) | #1: subtract ( number1, #0 ) | EOS"
    )
    assert mwp.prefix_to_linear("number0") == "number0 EOS"
    for bad in ("+ number0", "+ number0 number1 number2", "^ number0 number1"):
        with pytest.raises(mwp.FormulaError):
            mwp.prefix_to_linear(bad)


# ----------------------------------------------------------------------------- oracle critic

GOLD1 = "#0: multiply ( number0, number1 ) |  EOS"
GOLD2 = "#0: multiply ( number1, number2 ) | #1: subtract ( number0, #0 ) |  EOS"


@pytest.mark.parametrize(
    "generated,gold,feedback",
    [
        # the spec's worked examples (refiner.md 2.2), in this project's message layout
        ("#0: multiply ( number2, number1 ) |  EOS", GOLD1, "the first number in #0 is incorrect."),
        ("#0: add ( number0, number1 ) |  EOS", GOLD1, "the operator in #0 is incorrect."),
        ("#0: multiply ( number0, number1 ) | #1: multiply ( #0, number1 ) | EOS", GOLD1, "remove an operator."),
        (
            "#0: multiply ( number1, number2 ) | EOS",
            GOLD2,
            "add an operator. the operator in #1 is incorrect. the first number in #1 is incorrect. "
            "the second number in #1 is incorrect.",
        ),
        (GOLD2.replace("substract", "subtract"), GOLD2, "No hint."),
        ("#0: multiply ( number1, number2 ) | #1: substract ( number0, #0 ) | EOS", GOLD2, "No hint."),
        # fixed: subtraction is an operator like the others
        (
            "#0: multiply ( number1, number2 ) | #1: add ( number0, #0 ) | EOS",
            GOLD2,
            "the operator in #1 is incorrect.",
        ),
        # issue 13.6: the operands of add and multiply are unordered, as in the metric (equations_match)
        ("#0: multiply ( number2, number1 ) | #1: subtract ( number0, #0 ) | EOS", GOLD2, "No hint."),
        # the swapped order fits better: the generated step's second operand is the wrong one
        (
            "#0: multiply ( number2, number0 ) | #1: subtract ( number0, #0 ) | EOS",
            GOLD2,
            "the second number in #0 is incorrect.",
        ),
        (
            "#0: multiply ( number1, number2 ) | #1: subtract ( #0, number0 ) | EOS",
            GOLD2,
            "the first number in #1 is incorrect. the second number in #1 is incorrect.",
        ),  # subtract is not commutative
        (
            "garbage",
            GOLD1,
            "add an operator. the operator in #0 is incorrect. the first number in #0 is incorrect. "
            "the second number in #0 is incorrect.",
        ),
    ],
)
def test_oracle_feedback(generated, gold, feedback):
    assert mwp.oracle_feedback(generated, gold) == feedback


def test_oracle_and_metric_agree_on_every_formula_the_metric_counts_right():
    # issue 13.6: at T=3 a "right" answer must not be sent back with feedback (it could turn wrong)
    gold = "#0: add ( number0, number1 ) | #1: multiply ( #0, number2 ) | #2: subtract ( #1, number3 ) | EOS"
    variants = [
        "#0: add ( number1, number0 ) | #1: multiply ( #0, number2 ) | #2: subtract ( #1, number3 ) | EOS",
        "#0: add ( number0, number1 ) | #1: multiply ( number2, #0 ) | #2: subtract ( #1, number3 ) | EOS",
        "#0: add ( number1, number0 ) | #1: multiply ( number2, #0 ) | #2: subtract ( #1, number3 ) | EOS",
        "#0: add ( number1, number0 ) | #1: multiply ( number2, #0 ) | #2: subtract ( number3, #1 ) | EOS",
    ]
    for z in variants:
        assert (mwp.oracle_feedback(z, gold) == mwp.NO_HINT) is mwp.equations_match(z, gold), z
    assert mwp.oracle_feedback(variants[-1], gold) == (
        "the first number in #2 is incorrect. the second number in #2 is incorrect."
    )


def test_oracle_reports_steps_beyond_three_with_the_right_operand():
    gold = " | ".join(f"#{k}: add ( {'number0' if k == 0 else f'#{k - 1}'}, number1 )" for k in range(6)) + " | EOS"
    wrong = gold.replace("#4: add ( #3, number1 )", "#4: add ( number1, number1 )")
    assert mwp.oracle_feedback(wrong, gold) == "the first number in #4 is incorrect."  # reference: none / "second"


# ----------------------------------------------------------------------------- data files


def test_evaluator_agrees_with_the_training_answers():
    rows = mwp.load(shared_data("refiner", "mwp", "critique_train.json"))
    wrong = [r for r in rows if not mwp.answers_match(mwp.execute(r["formula"], r["numbers"]), r["answer"])]
    assert len(rows) == 3099 and len(wrong) <= 0.01 * len(rows)
    # the 12 exceptions are errors in the data: 6 rounded answers (2.99/12 = 0.2492 stored as 0.25; 69.4,
    # 0.165, 0.3333, 54.545, 41.0) and 6 wrong answers or formulas (34*4 = 136 stored as 134; 1222-513 = 709
    # stored as 208; 40/7 stored as 5; `divide ( number0, 7.0 )` where the problem needs 700/100; ...)
    assert sorted(int(r["id"].rsplit("-", 1)[1]) for r in wrong) == [
        82,
        120,
        284,
        397,
        586,
        620,
        1100,
        1337,
        1411,
        1786,
        1813,
        1875,
    ]


def test_svamp_csvs_convert_and_execute():
    dev = mwp.load(shared_data("svamp", "mawps-asdiv-a_svamp_dev.csv"))
    train = mwp.load(shared_data("svamp", "mawps-asdiv-a_svamp_train.csv"))
    assert len(dev) == 1000 and len(train) == 3138
    assert all(mwp.answers_match(mwp.execute(r["formula"], r["numbers"]), r["answer"]) for r in dev)
    assert sum(mwp.answers_match(mwp.execute(r["formula"], r["numbers"]), r["answer"]) for r in train) >= 3100


def test_refiner_test_file_quirks():
    test = mwp.load(shared_data("refiner", "mwp", "critique_test.json"))
    val = mwp.load(shared_data("refiner", "mwp", "critique_val.json"))
    assert len(test) == 999 and test[0]["numbers"] is None and test[0]["question"].endswith("each pack?")
    assert all("substract" not in r["formula"] and r["formula"].endswith("EOS") for r in val + test)
    assert val[0]["question"].endswith("than on tuesday ?")  # Body + " " + Question


# ----------------------------------------------------------------------------- REFINER task interface


def test_decoded_wordpiece_formulas_normalise_back():
    # what an uncased WordPiece tokenizer (the MiniLM seq2seq default) decodes a formula to
    decoded = "# 0 : multiply ( number1, number2 ) | # 1 : subtract ( number0, # 0 ) | eos"
    assert mwp.normalize(decoded) == mwp.normalize(GOLD2)
    assert mwp.execute("# 0 : divide ( number0, 100. 0 ) | eos", [50.0]) == 0.5


@pytest.mark.parametrize(
    "generated,match",
    [
        ("#0: multiply ( number1, number0 ) | EOS", True),  # swapped multiply operands
        ("#0: add ( number0, #0 ) | EOS", False),
        ("#0: multiply ( number0, number1 ) | EOS", True),
        ("#0: divide ( number1, number0 ) | EOS", False),  # divide is not commutative
        ("not a formula", False),
    ],
)
def test_commutative_exact_match_first_step(generated, match):
    assert mwp.equations_match(generated, "#0: multiply ( number0, number1 ) | EOS") is match


def test_commutative_exact_match_in_later_steps():
    gold = "#0: subtract ( number0, number1 ) | #1: add ( number2, #0 ) | EOS"
    # refiner.md 9.1.11: the reference's match assumed a later step's first operand is `#k`
    assert mwp.equations_match("#0: subtract ( number0, number1 ) | #1: add ( #0, number2 ) | EOS", gold)
    assert not mwp.equations_match("#0: subtract ( number1, number0 ) | #1: add ( #0, number2 ) | EOS", gold)
    assert not mwp.equations_match("#0: subtract ( number0, number1 ) | #1: subtract ( #0, number2 ) | EOS", gold)


def test_metrics_equation_em_and_answer_accuracy():
    ex = [
        {"id": "a", "x": "", "z": "#0: add ( number0, number1 ) | EOS", "numbers": [1.0, 2.0], "answer": 3.0},
        {"id": "b", "x": "", "z": "#0: multiply ( number0, number1 ) | EOS", "numbers": [2.0, 2.0], "answer": 4.0},
        {"id": "c", "x": "", "z": "#0: divide ( number0, number1 ) | EOS", "numbers": None, "answer": 2.0},
    ]
    preds = [
        "#0: add ( number1, number0 ) | EOS",  # EM by commutativity, right answer
        "#0: add ( number0, number1 ) | EOS",  # wrong equation, right answer (2 + 2 = 2 * 2)
        "#0: divide ( number0, number1 ) | EOS",
    ]  # EM, no numbers: not in answer accuracy
    m = mwp.metrics(ex, preds)
    assert m["equation_em"] == pytest.approx(200 / 3, abs=0.01) and m["answer_acc"] == 100.0 and m["answer_n"] == 2
    assert mwp.metrics(ex, ["x", "y", "z"])["equation_em"] == 0.0
    with pytest.raises(ValueError):
        mwp.metrics(ex, preds[:2])


def test_critique_is_the_oracle_and_says_no_hint_for_gold():
    ex = mwp.load_examples(shared_data("svamp", "mawps-asdiv-a_svamp_dev.csv"))[0]
    assert set(ex) == {"id", "x", "z", "numbers", "answer"}
    assert mwp.critique(ex, ex["z"]) == mwp.NO_HINT
    wrong = ex["z"].replace("subtract", "add")
    assert mwp.critique(ex, wrong) == mwp.oracle_feedback(wrong, ex["z"]) == "the operator in #0 is incorrect."


def test_refiner_test_file_gets_numbers_from_the_svamp_csv():
    test = shared_data("refiner", "mwp", "critique_test.json")
    csv = shared_data("svamp", "mawps-asdiv-a_svamp_dev.csv")
    assert all(e["numbers"] is None for e in mwp.load_examples(test))
    filled = mwp.load_examples(test, svamp_dev=csv)
    matched = [e for e in filled if e["numbers"] is not None]
    assert len(matched) >= 900  # refiner.md 1.1: 928 of the 935 matched execute
    m = mwp.metrics(filled, [e["z"] for e in filled])
    assert m["equation_em"] == 100.0 and m["answer_n"] == len(matched) and m["answer_acc"] > 98

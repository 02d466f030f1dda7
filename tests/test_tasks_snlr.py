import json
import random
import re

import pytest

from common.artifacts import BadRecordError, ReadStats
from common.tasks.refiner import snlr
from common.tasks.refiner.format import NO_HINT
from tests.conftest import shared_data

# hand-written in the files' format: an `and` rule with one condition met (big), and an `and` conclusion
LION = {
    "rules": [
        "If an animal is smart or green, then the animal is weak.",
        "If a lion is good, then the lion is scary.",
        "If an animal is big and clean, then the animal is red.",
        "If a lion is hot, then the lion is bad.",
        "If an animal is sad and fast, then the animal is old.",
    ],
    "fact": "The lion is circular and giant.",
    "consequents": "Nothing",
    "explanations": "#0: The argument is invalid!! ",
    "implicit_knowledge": ["#0: The argument is invalid!! "],
    "or_knowledge": [],
    "and_knowledge": ["giant is big"],
}
ROSE = {
    "rules": [
        "If a plant is red, then the plant is old.",
        "If a plant is sad, then the plant is boring.",
        "If a plant is purple, then the plant is big.",
        "If a plant is happy and cold, then the plant is fast.",
        "If a plant is sad and blue, then the plant is strong.",
    ],
    "fact": "The rose is sad and violet.",
    "consequents": "The rose is boring and big",
    "explanations": "#0: rose is plant #1: rose is sad #2: violet is purple #3: rose is purple #4: rose is boring and big ",
    "implicit_knowledge": ["violet is purple", "rose is plant"],
    "or_knowledge": [],
    "and_knowledge": [],
}


def hand_made(tmp_path, *records):
    path = tmp_path / "srn_hand.json"
    path.write_text(json.dumps(list(records), indent=2))
    return snlr.load_examples(path)


@pytest.fixture(scope="module")
def train():
    return snlr.load_examples(shared_data("refiner", "srn", "srn_train.json"))


def test_x_z_y_of_the_train_file(train):
    ex = train[0]
    assert ex["x"] == (
        "If a poppy is boring, then the poppy is red.\nIf a poppy is big or fast, then the poppy is weak.\n"
        "If a plant is smart, then the plant is hot.\nIf a plant is good, then the plant is purple.\n"
        "If a plant is bad or beautiful, then the plant is strong.\nFact:\nThe poppy is fragile and beautiful.\n"
        "The following can be determined about the poppy:"
    )
    assert ex["z"] == "#0: poppy is plant #1: poppy is beautiful #2: poppy is strong"
    assert ex["y"] == "The poppy is strong" and ex["fact_attributes"] == ["weak", "beautiful"]
    assert len(train) == 1000 and sum(e["y"] == "Nothing" for e in train) == 170  # refiner.md 1.2
    assert sum(e["z"] == "#0: The argument is invalid!!" for e in train) == 170


@pytest.mark.parametrize("split,n", [("train", 1000), ("val", 5000), ("test", 5000)])
def test_y_is_the_last_step_of_z_in_every_record(split, n):
    examples = snlr.load_examples(shared_data("refiner", "srn", f"srn_{split}.json"))
    assert len(examples) == n
    assert snlr.metrics(examples, [e["z"] for e in examples]) == {
        "n": n,
        "ir_exact_match": 100.0,
        "consequent_accuracy": 100.0,
    }
    assert all(snlr.consequent(e["z"], e) == e["y"] for e in examples)


def test_oracle_on_worked_examples(tmp_path, train):
    poppy = train[0]  # #0: poppy is plant #1: poppy is beautiful #2: poppy is strong
    cases = [
        ("#0: poppy is plant #1: poppy is beautiful #2: poppy is strong ", NO_HINT),
        ("#0:  Poppy is plant  #1: poppy is beautiful. #2: poppy is strong", NO_HINT),
        ("#0: poppy is plant #1: poppy is strong", snlr.MISSING_LINK),  # the paper's example
        ("#0: poppy is beautiful #1: poppy is strong", snlr.MISSING_KNOWLEDGE),
        ("#0: poppy is strong", f"{snlr.MISSING_LINK} {snlr.MISSING_KNOWLEDGE}"),
        (
            "#0: poppy is plant #1: poppy is beautiful #2: poppy is strong #3: poppy is hot",  # single-condition rule
            "inference rule #3 is invalid.",
        ),
        ("#0: poppy is beautiful #1: poppy is plant #2: poppy is strong", snlr.WRONG_ORDER),
        ("#0: The argument is invalid!!", f"{snlr.MISSING_LINK} {snlr.MISSING_KNOWLEDGE}"),
        ("", f"{snlr.MISSING_LINK} {snlr.MISSING_KNOWLEDGE}"),
    ]
    for z, feedback in cases:
        assert snlr.critique(poppy, z) == feedback, z
    lion, rose = hand_made(tmp_path, LION, ROSE)
    assert snlr.critique(lion, "#0: The argument is invalid!!") == NO_HINT
    assert snlr.critique(lion, "#0: lion is red") == "the and operator makes inference rule #0 invalid."
    assert snlr.critique(lion, "#0: lion is weak") == "the or operator makes inference rule #0 invalid."
    assert snlr.critique(lion, "#0: lion is bad") == "inference rule #0 is invalid."  # a one-condition rule
    assert snlr.critique(lion, "") == snlr.NOTHING_FOLLOWS
    flipped = rose["z"].replace("boring and big", "boring or big")
    assert snlr.critique(rose, flipped) == "the or operator makes inference rule #4 invalid."
    assert (
        snlr.critique(rose, rose["z"].replace("boring and big", "boring and big and fast"))
        == "the and operator makes inference rule #4 invalid."
    )
    assert snlr.critique(rose, rose["z"].replace("rose is boring and big", "rose is boring")) == snlr.MISSING_LINK


FEEDBACK = {
    "missing_link": re.escape(snlr.MISSING_LINK),
    "missing_implicit_knowledge": re.escape(snlr.MISSING_KNOWLEDGE),
    "logically_invalid": r"the (and|or) operator makes inference rule #\d+ invalid\.",
}


def test_every_perturbation_changes_z_and_gets_its_feedback(train, tmp_path):
    counts = {k: 0 for k in snlr.PERTURBATIONS}
    for ex in train + hand_made(tmp_path, LION, ROSE):
        for kind, wrong in snlr.perturbations(ex, random.Random(ex["id"])):
            counts[kind] += 1
            assert snlr.steps(wrong) != snlr.steps(ex["z"])
            assert re.fullmatch(FEEDBACK[kind], snlr.critique(ex, wrong)), (ex["z"], wrong)
    assert counts == {"missing_link": 616, "missing_implicit_knowledge": 663, "logically_invalid": 205}


def test_logically_invalid_perturbations_of_the_hand_made_examples(tmp_path):
    lion, rose = hand_made(tmp_path, LION, ROSE)
    assert list(snlr.perturbations(lion, random.Random(0))) == [("logically_invalid", "#0: lion is red")]
    kinds = {}
    for seed in range(20):
        for kind, wrong in snlr.perturbations(rose, random.Random(seed)):
            kinds.setdefault(kind, set()).add(wrong)
    assert kinds["logically_invalid"] == {
        rose["z"].replace("boring and big", "boring or big"),  # and -> or
        rose["z"] + " #5: rose is strong",
    }  # `sad and blue`: only sad holds
    assert kinds["missing_implicit_knowledge"] == {
        "#0: rose is sad #1: violet is purple #2: rose is purple #3: rose is boring and big",
        "#0: rose is plant #1: rose is sad #2: rose is purple #3: rose is boring and big",
    }
    assert len(kinds["missing_link"]) == 2  # rose is sad / rose is purple


def test_metrics_on_hand_made_predictions(train):
    examples = train[:5]  # y: strong, happy, boring, sad, slow
    predictions = [
        examples[0]["z"],  # exact
        examples[1]["z"].upper() + "   ",  # case and spacing: still exact
        "#0: rose is boring",  # no steps right, consequent right
        "#0: giraffe is animal #1: giraffe is clean #2: giraffe is happy",  # wrong consequent
        "#0: The argument is invalid!!",  # says Nothing, gold is slow
    ]
    assert snlr.metrics(examples, predictions) == {"n": 5, "ir_exact_match": 40.0, "consequent_accuracy": 60.0}
    nothing = next(e for e in train if e["y"] == "Nothing")
    assert snlr.metrics([nothing], ["#0: the argument is invalid!!"])["consequent_accuracy"] == 100.0
    assert snlr.consequent("#0: rose is big and boring", examples[2]) == "The rose is big and boring"
    with pytest.raises(ValueError, match="2 predictions for 1"):
        snlr.metrics(examples[:1], ["a", "b"])


def test_consequent_scoring_rejects_or_for_and_empty_output_and_keeps_one_article(tmp_path):
    # issue 13.3
    (rose,) = hand_made(tmp_path, ROSE)  # y: The rose is boring and big
    gold = "#0: rose is plant #1: rose is sad #2: violet is purple #3: rose is purple"

    def right(z, example=rose):
        return snlr.metrics([example], [z])["consequent_accuracy"] == 100.0

    assert right(gold + " #4: rose is big and boring")  # attributes in any order
    assert not right(gold + " #4: rose is boring or big")  # the critic's logically-invalid error
    assert (
        snlr.critique(rose, gold + " #4: rose is boring or big") == "the or operator makes inference rule #4 invalid."
    )
    assert right(gold + " #4: the rose is boring and big")
    assert snlr.consequent("#0: the rose is boring and big", rose) == "The rose is boring and big"  # not "The the"
    nothing = next(e for e in hand_made(tmp_path, LION))
    assert right("#0: The argument is invalid!!", nothing)
    for empty in ("", "   ", "#0:"):
        assert snlr.consequent(empty, nothing) == "" and not right(empty, nothing)


def test_malformed_records_name_file_and_line(tmp_path):
    bad = dict(ROSE, rules=ROSE["rules"][:4] + ["Whenever it rains it pours."])
    path = tmp_path / "srn_bad.json"
    path.write_text(json.dumps([ROSE, bad, {"fact": "The rose is sad."}], indent=2))
    line = path.read_text().splitlines().index("  {", 2) + 1  # the second record's opening line
    with pytest.raises(BadRecordError, match=rf"srn_bad.json:{line}: rule not of the form"):
        snlr.load_examples(path)
    stats = ReadStats()
    assert len(snlr.load_examples(path, "skip", stats)) == 1
    assert stats.bad == 2 and "missing field(s) rules" in stats.bad_examples[1]
    with pytest.raises(FileNotFoundError, match="no Hub copy"):
        snlr.load_examples(tmp_path / "absent.json")

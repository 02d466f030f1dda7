import json

import pytest

from common.tasks.rationalyst import choose_shots, context, ecqa

CSQA_VALIDATION = [  # tau/commonsense_qa rows
    {
        "id": "q1",
        "question": "Where would you keep milk cold?",
        "question_concept": "milk",
        "choices": {"label": ["A", "B", "C", "D", "E"], "text": ["oven", "refrigerator", "shelf", "car", "garden"]},
        "answerKey": "B",
    },
    {
        "id": "q2",
        "question": "What do people use to cut paper?",
        "question_concept": "paper",
        "choices": {"label": ["A", "B", "C", "D", "E"], "text": ["spoon", "pillow", "scissors", "towel", "cup"]},
        "answerKey": "C",
    },
]
ECQA_TRAIN = [  # yangdong/ecqa rows: explanation sentences one per line
    {
        "q_no": "t1",
        "q_concept": "rain",
        "q_text": "What falls from clouds?",
        "q_op1": "rain",
        "q_op2": "rocks",
        "q_op3": "cars",
        "q_op4": "shoes",
        "q_op5": "books",
        "q_ans": "rain",
        "taskA_pos": "Clouds hold water droplets.\nHeavy droplets fall as rain.",
        "taskA_neg": "Rocks do not float in clouds.\nCars are on roads.\nShoes are worn on feet.\nBooks are on shelves.",
        "taskB": "Clouds hold water that falls as rain.",
    },
    {
        "q_no": "t2",
        "q_concept": "sleep",
        "q_text": "Where do people usually sleep?",
        "q_op1": "kitchen",
        "q_op2": "bathtub",
        "q_op3": "bed",
        "q_op4": "roof",
        "q_op5": "road",
        "q_ans": "bed",
        "taskA_pos": "A bed is made for sleeping.",
        "taskA_neg": "Kitchens are for cooking.\nBathtubs are for "
        "bathing.\nRoofs cover houses.\nRoads are for driving.",
        "taskB": "People sleep in beds.",
    },
]


def write(folder):
    folder.mkdir()
    (folder / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in CSQA_VALIDATION))
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ECQA_TRAIN))
    return folder


def test_load_both_layouts(tmp_path):
    folder = write(tmp_path / "ecqa")
    qs = ecqa.load("validation", folder)
    assert [(q["id"], q["answer"], q["source_id"]) for q in qs] == [
        ("ecqa-validation-0", "B", "q1"),
        ("ecqa-validation-1", "C", "q2"),
    ]
    assert ecqa.prefix(qs[0]) == (
        "Question: Where would you keep milk cold?\nChoices: A - oven B - refrigerator "
        "C - shelf D - car E - garden\nAnswer:"
    )
    train = ecqa.load("train", folder)
    assert train[1]["answer"] == "C" and train[1]["choices"][2] == "bed"


def test_few_shot_explanations_spliced_at_the_gold_option(tmp_path):
    pool = ecqa.shot_pool(write(tmp_path / "ecqa"))
    bed = next(ex for ex in pool if ex["source_id"] == "t2")
    # 6.2: negatives, with the joined positives at the gold index (C -> third), then the answer
    assert ecqa.shot_steps(bed) == [
        "Kitchens are for cooking.",
        "Bathtubs are for bathing.",
        "A bed is made for sleeping.",
        "Roofs cover houses.",
        "Roads are for driving.",
        "The answer is: C",
    ]
    rain = next(ex for ex in pool if ex["source_id"] == "t1")
    assert ecqa.shot_steps(rain)[0] == "Clouds hold water droplets. Heavy droplets fall as rain."
    msgs = context(ecqa, ecqa.load("validation", tmp_path / "ecqa")[0], choose_shots(ecqa, pool, 8, seed=14))
    assert msgs[0]["role"] == "system" and "The answer is: <letter>" in msgs[0]["content"]
    assert [m["role"] for m in msgs].count("user") == 3 and msgs[-1]["content"].startswith("Question: Where would")


def test_shots_need_explanations(tmp_path):
    folder = tmp_path / "csqa_only"
    folder.mkdir()
    (folder / "train.jsonl").write_text(json.dumps(CSQA_VALIDATION[0]) + "\n")
    with pytest.raises(ValueError, match="no train rows with explanations"):
        ecqa.shot_pool(folder)


@pytest.mark.parametrize(
    "output,strict,flexible",
    [
        ("Milk spoils when warm and a refrigerator keeps food cold. The answer is: B", "B", "B"),
        ("So the answer is (B).", "B", "B"),
        ("The answer is B. refrigerator", "B", "B"),
        ("The answer is: refrigerator.", None, "B"),  # the option's text, mapped to its letter
        ("B. A refrigerator keeps milk cold.", None, "B"),
        ("The answer is a refrigerator, I think.", None, None),  # lower-case "a" is an article
        ("I cannot decide between the options.", None, None),  # never a random letter
        ("Milk needs to stay cold, not warm like an oven, so not A.", None, None),
        ("The answer is not A, it is B.", None, None),  # "it is B" names no choice form; "not A" is negated
        ("Option B", None, "B"),
    ],
)
def test_extraction(output, strict, flexible):
    q = ecqa.example(CSQA_VALIDATION[0], "x", "test")
    assert ecqa.predict(output, q, "strict") == strict
    assert ecqa.predict(output, q, "flexible") == flexible
    assert ecqa.is_correct(ecqa.predict(output, q, "flexible"), q["answer"]) is (flexible == "B")

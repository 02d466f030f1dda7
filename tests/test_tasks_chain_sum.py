"""common/tasks/rationalyst/chain_sum.py and gsm_symbolic.py: the offline tasks."""

import pytest

from common.tasks.rationalyst import chain_sum, get_task, gsm_symbolic


def test_chain_sum_solutions_and_splits():
    test = chain_sum.load("test", limit=50)
    assert get_task("chain_sum") is chain_sum and len(test) == 50
    for ex in test:
        steps = chain_sum.shot_steps(ex)
        assert steps[-1] == f"The answer is: {ex['answer']}." and len(steps) in (2, 3)
        assert chain_sum.is_correct(chain_sum.predict(steps[-1], ex), ex["answer"])
    assert chain_sum.solution("8 - 9 + 4") == ("8 - 9 = -1\n-1 + 4 = 3\n#### 3", 3)
    assert chain_sum.predict("The answer is: -1.", {}) == "-1"
    train = {x["question"] for x in chain_sum.load("train", limit=200)}
    assert chain_sum.load("test", limit=50) == test  # seeded
    assert len(train) > 50 and chain_sum.prefix(test[0]).startswith("Question: What is ")
    with pytest.raises(ValueError, match="reads no file"):
        chain_sum.load("test", "some/file")


def test_gsm_symbolic_splits_are_separate_streams():
    test = {x["question"] for x in gsm_symbolic.load("test", limit=100)}
    train = {x["question"] for x in gsm_symbolic.load("train", limit=300)}
    # the templates' variables have small ranges, so a problem can recur by chance: 3 of these 100
    assert len(test) > 90 and len(test & train) <= 5
    assert gsm_symbolic.load("test", limit=3) == gsm_symbolic.load("test", limit=10)[:3]  # item i is stable

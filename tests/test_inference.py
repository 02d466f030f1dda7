import json
import random

import pytest

from model_inference import inference


@pytest.mark.parametrize("heuristic,scores,want", [
    ("rationalyst", [-2.0, -0.5, -1.0], 1),             # highest mean log-prob given the rationale
    ("rationalyst_explicit", [-0.1, -0.5, -0.1], 0),     # ties go to the first
    ("llm_judge", [3.0, 9.0, 9.0], 1),
    ("greedy", None, 0),
    ("self_consistency", None, 0),
])
def test_each_heuristic_picks_what_it_should(heuristic, scores, want):
    assert inference.choose(heuristic, ["a", "b", "c"], scores, random.Random(0)) == want


def test_random_is_uniform_and_seeded():
    picks = [inference.choose("random", ["a", "b", "c"], None, random.Random(s)) for s in range(300)]
    assert {0, 1, 2} == set(picks) and all(60 < picks.count(i) < 140 for i in range(3))
    assert inference.choose("random", ["a", "b"], None, random.Random(5)) == \
        inference.choose("random", ["a", "b"], None, random.Random(5))


def test_majority_and_judge_parsing():
    assert inference.majority(["3", None, "4", "4", "3"]) == "3"        # tie: first reached
    assert inference.majority(["5", "6", "6"]) == "6" and inference.majority([None, None]) is None
    assert inference.judge_score("8") == 8.0 and inference.judge_score("Rating: 12/10") == 10.0
    assert inference.judge_score("no idea") == 0.0


def test_few_shot_layout_per_spec():
    pool = [{"question": "Tom has 3 boxes of 4. How many?", "solution": "3*4=<<3*4=12>>12\n#### 12", "answer": "12"}]
    msgs = inference.shot_messages(pool, 9, seed=14)
    assert msgs == [{"role": "user", "content": "Question: Tom has 3 boxes of 4. How many?\nAnswer:"},
                    {"role": "assistant", "content": "3*4=12."},
                    {"role": "assistant", "content": "The answer is: 12."}]
    assert inference.states_answer("So the answer is 12.") and not inference.states_answer("3*4=12.")


def run(tiny_llama_dir, tmp_path, heuristic, **extra):
    out = tmp_path / heuristic
    args = ["--dataset", "gsm_symbolic", "--limit", "2", "--heuristic", heuristic, "--output", str(out),
            "--model", tiny_llama_dir, "--device", "cpu", "--shots", "1", "--max-steps", "3",
            "--step-max-tokens", "6", "--rationale-max-tokens", "5", "--rationale-model", tiny_llama_dir]
    for k, v in extra.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    assert inference.main(args) == 0
    return [json.loads(l) for l in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("heuristic", inference.HEURISTICS)
def test_loop_terminates_at_the_step_limit(tiny_llama_dir, tmp_path, heuristic):
    """A random tiny model never states an answer: every question stops at max_steps."""
    rows = run(tiny_llama_dir, tmp_path, heuristic)
    assert [r["id"] for r in rows] == ["gsm_symbolic-test-0", "gsm_symbolic-test-1"]
    for r in rows:
        assert r["stopped"] in ("step_limit", "no_candidate") and r["n_steps"] <= 3
        assert r["prediction"] is None and r["correct"] is False and r["heuristic"] == heuristic
        for step in r["steps"]:
            want = 1 if heuristic in ("greedy", "self_consistency") else 3
            assert len(step["candidates"]) == want and 0 <= step["chosen"] < want
            if heuristic.startswith("rationalyst"):
                assert step["rationale"] is not None and len(step["scores"]) == 3
                assert step["chosen"] == max(range(3), key=lambda i: (step["scores"][i], -i))
    if heuristic == "self_consistency":
        assert all(len(r["lanes"]) == 3 for r in rows)

"""common/tasks/steps.py: each data set of labelled steps from its original format."""

import json

import pytest

from common.artifacts import BadRecordError
from common.tasks import steps
from tests.conftest import shared_data

PROCESSBENCH = [  # Qwen/ProcessBench's layout: label = 0-based index of the first wrong step, -1 for none
    {
        "id": "gsm8k-0",
        "generator": "x",
        "problem": "What is 2+3?",
        "steps": ["2+3=6.", "So 6."],
        "label": 0,
        "final_answer_correct": False,
    },
    {
        "id": "gsm8k-1",
        "generator": "x",
        "problem": "What is 2+2?",
        "steps": ["2+2=4.", "So 4."],
        "label": -1,
        "final_answer_correct": True,
    },
    {
        "id": "gsm8k-2",
        "generator": "x",
        "problem": "What is 3*3?",
        "steps": ["3*3 is", "9", "so 10."],
        "label": 2,
        "final_answer_correct": False,
    },
]
PRM800K = {  # phase 2: chosen completions, ratings -1/0/1, the error step with no chosen completion
    "labeler": "l",
    "timestamp": "t",
    "generation": 1,
    "is_quality_control_question": False,
    "is_initial_screening_question": False,
    "question": {"problem": "Find 20! mod 7.", "ground_truth_answer": "6"},
    "label": {
        "steps": [
            {
                "completions": [{"text": "I recall Wilson's theorem.", "rating": 0, "flagged": None}],
                "human_completion": None,
                "chosen_completion": 0,
            },
            {
                "completions": [{"text": "20! contains 7, so it is 0 mod 7.", "rating": 1, "flagged": None}],
                "human_completion": None,
                "chosen_completion": 0,
            },
            {
                "completions": [
                    {"text": "So the answer is 6.", "rating": -1, "flagged": None},
                    {"text": "So the answer is 0.", "rating": 1, "flagged": None},
                ],
                "human_completion": None,
                "chosen_completion": None,
            },
        ],
        "total_time": 1,
        "finish_reason": "found_error",
    },
}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_processbench_positions_are_0_based(tmp_path):
    sols = steps.load(f"processbench={write_jsonl(tmp_path / 'pb.jsonl', PROCESSBENCH)}")
    assert [s["first_error"] for s in sols] == [0, -1, 2]
    assert sols[0]["labels"] == [0, None] and sols[1]["labels"] == [1, 1] and sols[2]["labels"] == [1, 1, 0]
    assert [s["correct"] for s in sols] == [False, True, False]


def test_prmbench_positions_are_1_based(tmp_path):
    row = {
        "idx": "p1",
        "question": "Q",
        "modified_question": "Q?",
        "original_process": ["a", "b", "c"],
        "modified_process": ["a", "b!", "c"],
        "modified_steps": [2],
        "error_steps": [2],
        "reason": "r",
        "classification": "counterfactual",
    }
    [sol] = steps.load(f"prmbench={write_jsonl(tmp_path / 'p.jsonl', [row])}")
    assert sol["labels"] == [1, 0, 1] and sol["first_error"] == 1 and sol["question"] == "Q?"
    real = steps.load(f"prmbench={shared_data('prmbench', 'prmbench_subset400.jsonl')}")
    assert len(real) == 394 and sum(bool(s["dropped_error_steps"]) for s in real) == 11
    assert all(len(s["labels"]) == len(s["steps"]) for s in real)
    assert sum(s["first_error"] == -1 for s in real) == 10  # the multi_solutions items list no error


def test_prm800k_phase2(tmp_path):
    [sol] = steps.load(f"prm800k={write_jsonl(tmp_path / 'phase2_test.jsonl', [PRM800K])}")
    assert sol["steps"][-1] == "So the answer is 6." and sol["labels"] == [1, 1, 0] and sol["first_error"] == 2
    assert sol["gold"] == "6" and sol["finish_reason"] == "found_error"


def test_gsm8k_model_solutions_for_best_of_n():
    sols = steps.load(f"gsm8k_solutions={shared_data('gsm8k', 'example_model_solutions_first100.jsonl')}")
    assert len(sols) == 400 and len({s["group"] for s in sols}) == 100
    first = [s for s in sols if s["group"] == "q0"]
    assert {s["gold"] for s in first} == {"18"} and all(s["labels"] is None for s in first)
    assert sum(s["answer"] is None for s in sols) == 2  # two solutions were cut off before their answer line
    assert not any("<<" in x for s in sols for x in s["steps"])


def test_perturbed_pairs_are_seeded_and_corrupt_one_known_step():
    sols = steps.load("perturbed:gsm_symbolic", seed=3, limit=20)
    assert sols == steps.load("perturbed:gsm_symbolic", seed=3, limit=20)
    assert sols != steps.load("perturbed:gsm_symbolic", seed=4, limit=20)
    by_pair = {}
    for s in sols:
        by_pair.setdefault(s["pair"], []).append(s)
    assert len(by_pair) >= 18
    for gold, bad in by_pair.values():
        k = bad["position"]
        assert gold["first_error"] == -1 and bad["first_error"] == k and bad["labels"][k] == 0
        assert [i for i, (a, b) in enumerate(zip(gold["steps"], bad["steps"])) if a != b] == [k]
        assert bad["kind"] in ("numbers", "operator")


def test_perturbed_mwp_uses_refiners_rules():
    sols = steps.load(f"perturbed:mwp={shared_data('svamp', 'mawps-asdiv-a_svamp_dev.csv')}", limit=30)
    bad = [s for s in sols if s["first_error"] != -1]
    assert bad and all(s["steps"][s["position"]].startswith(f"#{s['position']}:") for s in bad)


def test_a_malformed_line_is_named(tmp_path):
    path = tmp_path / "pb.jsonl"
    path.write_text(json.dumps(PROCESSBENCH[0]) + "\n" + json.dumps({**PROCESSBENCH[1], "label": 5}) + "\n")
    with pytest.raises(BadRecordError, match=r"pb.jsonl:2: label 5 outside"):
        steps.load(f"processbench={path}")
    with pytest.raises(ValueError, match="unknown step data 'prmbank'"):
        steps.load("prmbank=x")

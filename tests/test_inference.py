import json
from dataclasses import replace

import pytest

from common.config import make_config
from common.llm.base import Completion
from common.scorers import Candidates, RandomScorer, StepContext, StepScorer, best, judge_reward
from common.tasks.rationalyst import TASKS, choose_shots, context, get_task, gsm8k
from model_inference import inference


class Proposer:
    """A stand-in agent that proposes the given candidates every round (the loop's bookkeeping is under test)."""

    def __init__(self, candidates):
        self.candidates, self.prompts = candidates, []

    def generate(self, prompts, n=1, **kw):
        self.prompts += prompts
        return [Completion(texts=self.candidates[:n]) for _ in prompts]


class Fixed(StepScorer):
    """Known scores, in the order the candidates come."""

    def __init__(self, scores):
        self.scores, self.seen = scores, []

    def score(self, batch, prepared):
        self.seen += batch
        return [list(self.scores) for _ in batch]


@pytest.mark.parametrize(
    "heuristic,scores,want",
    [
        ("rationalyst", [-2.0, -0.5, -1.0], 1),  # highest mean log-prob given the rationale
        ("rationalyst_explicit", [-0.1, -0.5, -0.1], 0),  # ties go to the first
        ("llm_judge", [3.0, 9.0, 9.0], 1),
        ("likelihood", [-3.0, -2.0, -1.0], 2),
        ("greedy", None, 0),
        ("self_consistency", None, 0),
    ],
)
def test_each_heuristic_picks_what_it_should(tmp_path, heuristic, scores, want):
    """Through the loop and the registry: the candidate with the best known score is the step taken."""
    cfg = cfg_for(f"gsm8k={write_local(tmp_path, 'gsm8k')}", heuristic=heuristic, max_steps=1)
    task, questions, context_of = inference.load_questions(cfg)
    agent = Proposer(["Step a.", "Step b.", "Step c."])
    scorer = Fixed(scores) if scores else None
    assert (inference.HEURISTICS[heuristic].scorer is not None) == (scorer is not None)
    [[rec]] = inference.run_batch(cfg, task, context_of, agent, scorer, questions)
    step = rec["steps"][0]
    n = 1 if heuristic in ("greedy", "self_consistency") else 3  # self-consistency: one sample per lane
    assert step["candidates"] == ["Step a.", "Step b.", "Step c."][:n] and step["chosen"] == want
    assert rec["trajectory"].endswith(" " + step["candidates"][want])
    if scorer:
        assert step["scores"] == scores and [c.steps for c in scorer.seen] == [step["candidates"]]
        assert scorer.seen[0].context.steps == [] and scorer.seen[0].context.prefix == task.prefix(questions[0])


def test_random_is_uniform_and_seeded():
    ctx = StepContext("q", [{"role": "user", "content": "Q?"}])
    batch = [Candidates(ctx, ["a", "b", "c"])]
    picks = [best(RandomScorer(s).score(batch, [None])[0]) for s in range(300)]
    assert {0, 1, 2} == set(picks) and all(60 < picks.count(i) < 140 for i in range(3))
    assert RandomScorer(5).score(batch, [None]) == RandomScorer(5).score(batch, [None])
    later = [Candidates(StepContext("q", ctx.messages, ["a"]), ["a", "b", "c"])]
    assert RandomScorer(5).score(later, [None]) != RandomScorer(5).score(batch, [None])  # each round its own draw


def test_majority_and_judge_parsing():
    assert inference.majority(["3", None, "4", "4", "3"]) == "3"  # tie: first reached
    assert inference.majority(["5", "6", "6"]) == "6" and inference.majority([None, None]) is None
    assert judge_reward("8", "rating_1_10") == 8.0 and judge_reward("Rating: 12/10", "rating_1_10") == 10.0
    assert judge_reward("no idea", "rating_1_10") == -1.0  # ranks below every rated step
    assert judge_reward("Reward: 2", "reward_0_3") == 2.0 and judge_reward("reward=7", "reward_0_3") == 3.0
    assert judge_reward("I think 1.", "reward_0_3") == 1.0 and judge_reward("unsure", "reward_0_3") == -1.0


def test_few_shot_layout_per_spec():
    pool = [{"question": "Tom has 3 boxes of 4. How many?", "solution": "3*4=<<3*4=12>>12\n#### 12", "answer": "12"}]
    msgs = context(gsm8k, {"question": "Q?"}, choose_shots(gsm8k, pool, 9, seed=14))
    assert msgs == [
        {"role": "user", "content": "Question: Tom has 3 boxes of 4. How many?\nAnswer:"},
        {"role": "assistant", "content": "3*4=12."},
        {"role": "assistant", "content": "The answer is: 12."},
        {"role": "user", "content": "Question: Q?\nAnswer:"},
    ]
    assert gsm8k.states_answer("So the answer is 12.") and not gsm8k.states_answer("3*4=12.")


# ----------------------------------------------------------------------------- --dataset, for all seven

LOCAL = {  # one question per benchmark, in its original row format, answered correctly by ANSWERS below
    "gsm8k": (
        "test.jsonl",
        [{"question": "Ann has 2 pens and buys 3. How many?", "answer": "2+3=5\n#### 5"}],
        "train.jsonl",
        [{"question": "Bo has 1 cat.", "answer": "#### 1"}],
    ),
    "math": (
        "test.jsonl",
        [{"problem": "What is $2^3$?", "solution": "$2^3=\\boxed{8}$.", "level": "Level 1", "type": "Algebra"}],
        "train.jsonl",
        [{"problem": "What is 1+1?", "solution": "It is $\\boxed{2}$.", "level": "Level 1", "type": "Algebra"}],
    ),
    "ecqa": (
        "validation.jsonl",
        [
            {
                "id": "c1",
                "question": "Where is milk kept cold?",
                "question_concept": "milk",
                "choices": {"label": list("ABCDE"), "text": ["oven", "fridge", "car", "bag", "sun"]},
                "answerKey": "B",
            }
        ],
        "train.jsonl",
        [
            {
                "q_no": "e1",
                "q_text": "What is wet?",
                "q_op1": "sand",
                "q_op2": "water",
                "q_op3": "dust",
                "q_op4": "salt",
                "q_op5": "ash",
                "q_ans": "water",
                "taskA_pos": "Water is wet.",
                "taskA_neg": "Sand is dry.\nDust is dry.",
                "taskB": "",
            }
        ],
    ),
    "hellaswag": (
        "validation.jsonl",
        [
            {
                "ind": 1,
                "activity_label": "Cooking",
                "ctx_a": "A man cracks an egg.",
                "ctx_b": "he",
                "ctx": "A man cracks an egg. he",
                "endings": ["sings.", "flies.", "fries it in a pan.", "sleeps."],
                "source_id": "x",
                "split": "val",
                "split_type": "indomain",
                "label": "2",
            }
        ],
        None,
        None,
    ),
    "proofwriter": (
        "test.json",
        [{"question": "The dog is red.", "context": "The dog is big.", "answer": "C"}],
        None,
        None,
    ),
    "arc": (
        "test.jsonl",
        [
            {
                "id": "a1",
                "question": "What do plants need?",
                "answerKey": "1",
                "choices": {"text": ["light", "noise", "plastic"], "label": ["1", "2", "3"]},
            }
        ],
        None,
        None,
    ),
    "mmlu_pro": (
        "test.jsonl",
        [
            {
                "question_id": 1,
                "question": "2+2?",
                "options": [str(i) for i in range(10)],
                "answer": "E",
                "answer_index": 4,
                "cot_content": "",
                "category": "math",
                "src": "x",
            }
        ],
        "validation.jsonl",
        [
            {
                "question_id": 2,
                "question": "1+1?",
                "options": [str(i) for i in range(10)],
                "answer": "C",
                "answer_index": 2,
                "cot_content": "A: Let's think. 1+1=2. The answer is (C).",
                "category": "math",
                "src": "x",
            }
        ],
    ),
}
ANSWERS = {
    "gsm8k": "So she has 5 pens. The answer is 5.",
    "math": "Hence $2^3 = \\boxed{8}$.",
    "ecqa": "A fridge keeps milk cold, so the answer is: fridge.",
    "hellaswag": "The answer is (C).",
    "proofwriter": "Nothing says the dog is red. The answer is: Unknown",
    "arc": "The answer is: A",
    "mmlu_pro": "2+2=4, so the answer is (E).",
}


def write_local(root, name):
    folder = root / name
    folder.mkdir()
    split_file, rows, shot_file, shot_rows = LOCAL[name]
    for file, data in ((split_file, rows), (shot_file, shot_rows)):
        if file:
            text = json.dumps(data) if file.endswith(".json") else "".join(json.dumps(r) + "\n" for r in data)
            (folder / file).write_text(text)
    return folder


def cfg_for(dataset, **kw):
    return make_config(inference.InferenceConfig, {"dataset": dataset, **kw})


@pytest.mark.parametrize("name", sorted(LOCAL))
def test_load_questions_dispatches_on_dataset(tmp_path, name):
    task, questions, context_of = inference.load_questions(cfg_for(f"{name}={write_local(tmp_path, name)}"))
    assert task is get_task(name) and len(questions) == 1
    q = questions[0]
    msgs = context_of(q)
    assert msgs[-1] == {"role": "user", "content": task.prefix(q)} and msgs[-1]["content"].startswith("Question: ")
    n_shots = sum(m["role"] == "user" for m in msgs) - 1
    assert (
        n_shots == {"gsm8k": 1, "math": 1, "ecqa": 1, "hellaswag": 4, "proofwriter": 3, "arc": 8, "mmlu_pro": 1}[name]
    )
    assert (msgs[0]["role"] == "system") is (name != "gsm8k")
    final = ANSWERS[name]
    assert task.states_answer(final)
    assert task.is_correct(task.predict(final, q, "flexible"), q["answer"])
    assert not task.is_correct(task.predict("I give up.", q, "flexible"), q["answer"])


def test_shots_from_the_same_file_are_held_out(tmp_path):
    f = tmp_path / "gsm.jsonl"
    f.write_text("".join(json.dumps({"question": f"Q{i}?", "answer": f"#### {i}"}) + "\n" for i in range(6)))
    _, questions, context_of = inference.load_questions(cfg_for(f"gsm8k={f}", shots=2))
    shot_questions = [m["content"] for m in context_of(questions[0]) if m["role"] == "user"][:-1]
    assert len(questions) == 4 and len(shot_questions) == 2
    assert not {q["question"] for q in questions} & {s.split("\n")[0][len("Question: ") :] for s in shot_questions}
    _, questions, _ = inference.load_questions(cfg_for(f"gsm8k={f}", shots=2, limit=3))
    assert len(questions) == 3


def test_unknown_dataset_is_refused():
    with pytest.raises(SystemExit, match="unknown task 'gsm9k'"):
        inference.load_questions(cfg_for("gsm9k"))


class Scripted:
    """A stand-in agent that always proposes `step` (the loop's bookkeeping is under test, not a model)."""

    def __init__(self, step):
        self.step, self.prompts = step, []

    def generate(self, prompts, n=1, **kw):
        self.prompts += prompts
        return [Completion(texts=[self.step] * n) for _ in prompts]


@pytest.mark.parametrize("name", sorted(LOCAL))
def test_loop_stops_on_the_answer_and_scores_it(tmp_path, name):
    cfg = cfg_for(f"{name}={write_local(tmp_path, name)}", heuristic="greedy", max_steps=4)
    task, questions, context_of = inference.load_questions(cfg)
    agent = Scripted(ANSWERS[name])
    [[rec]] = inference.run_batch(cfg, task, context_of, agent, None, questions)
    assert rec["stopped"] == "answer" and rec["n_steps"] == 1 and rec["correct"] is True
    assert agent.prompts[0][-1]["content"] == task.prefix(questions[0])
    strict_ok = name != "ecqa"  # "the answer is: fridge" (an option's text) is read only by the flexible rule
    assert rec["correct_strict"] is strict_ok and (rec["prediction_strict"] is None) is (not strict_ok)
    [[wrong]] = inference.run_batch(cfg, task, context_of, Scripted("Let me think about it."), None, questions)
    assert wrong["stopped"] == "step_limit" and wrong["n_steps"] == 4 and wrong["prediction"] is None
    assert wrong["correct"] is False


def run(tiny_llama_dir, tmp_path, heuristic, **extra):
    out = tmp_path / heuristic
    args = [
        "--dataset",
        "gsm_symbolic",
        "--limit",
        "2",
        "--heuristic",
        heuristic,
        "--output",
        str(out),
        "--model",
        tiny_llama_dir,
        "--device",
        "cpu",
        "--shots",
        "1",
        "--max-steps",
        "3",
        "--step-max-tokens",
        "6",
        "--rationale-max-tokens",
        "5",
        "--rationale-model",
        tiny_llama_dir,
    ]
    for k, v in extra.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    assert inference.main(args) == 0
    return [json.loads(l) for l in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("heuristic", inference.HEURISTICS)
def test_loop_terminates_at_the_step_limit(tiny_llama_dir, tmp_path, heuristic):
    """A random tiny model never states an answer: every question runs to max_steps with real candidates
    (cot: one full solution, read by the flexible extraction)."""
    rows = run(tiny_llama_dir, tmp_path, heuristic)
    assert [r["id"] for r in rows] == ["gsm_symbolic-test-0", "gsm_symbolic-test-1"]
    for r in rows:
        if heuristic == "cot":
            assert r["stopped"] == "solution" and r["n_steps"] == 1 and len(r["steps"][0]["candidates"][0]) > 0
        else:
            assert r["stopped"] == "step_limit" and r["n_steps"] == 3  # three rounds, each with candidates
            assert r["prediction"] is None
        assert r["correct"] is False and r["heuristic"] == heuristic
        for step in r["steps"]:
            assert all(step["candidates"])
            want = 1 if heuristic in ("greedy", "self_consistency", "cot") else 3
            assert len(step["candidates"]) == want and 0 <= step["chosen"] < want
            if heuristic.startswith("rationalyst"):
                assert step["rationale"] is not None and len(step["scores"]) == 3
                assert step["chosen"] == max(range(3), key=lambda i: (step["scores"][i], -i))
    if heuristic == "self_consistency":
        assert all(len(r["lanes"]) == 3 for r in rows)


def test_a_real_run_on_a_multiple_choice_set(tiny_llama_dir, tmp_path):
    """MMLU-Pro from a local copy, end to end with a real (tiny) agent, rationale model and scorer."""
    folder = write_local(tmp_path, "mmlu_pro")
    out = tmp_path / "out"
    assert (
        inference.main(
            [
                "--dataset",
                f"mmlu_pro={folder}",
                "--heuristic",
                "rationalyst",
                "--output",
                str(out),
                "--model",
                tiny_llama_dir,
                "--rationale-model",
                tiny_llama_dir,
                "--device",
                "cpu",
                "--max-steps",
                "2",
                "--step-max-tokens",
                "5",
                "--rationale-max-tokens",
                "4",
            ]
        )
        == 0
    )
    [rec] = [json.loads(l) for l in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]
    assert rec["id"] == "mmlu_pro-test-0" and rec["gold"] == "E" and rec["trajectory"].startswith("Question: 2+2?")
    assert 1 <= rec["n_steps"] <= 2 and all(len(s["scores"]) == 3 for s in rec["steps"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["dataset"] == f"mmlu_pro={folder}" and manifest["config"]["shots"] == -1


def test_paper_recipes_name_their_benchmark():
    from pathlib import Path

    from common.config import load_recipe

    recipes = sorted((Path(__file__).resolve().parents[1] / "configs" / "paper").glob("inference*.yaml"))
    names = {load_recipe(r, inference.InferenceConfig)["dataset"]: r.stem for r in recipes}
    assert names == {
        "gsm8k": "inference",
        **{n: f"inference-{n}" for n in ("math", "ecqa", "hellaswag", "proofwriter", "arc", "mmlu_pro")},
    }
    assert set(names) == set(TASKS)


def same_records(a: list[dict], b: list[dict]) -> None:
    """Identical choices and texts; scores equal to float precision (a cached prefix and a fresh forward
    differ in the last bits)."""
    assert [r["id"] for r in a] == [r["id"] for r in b]
    for x, y in zip(a, b):
        assert x["trajectory"] == y["trajectory"] and x["stopped"] == y["stopped"]
        for s, t in zip(x["steps"], y["steps"], strict=True):
            assert (s["candidates"], s["chosen"], s["rationale"]) == (t["candidates"], t["chosen"], t["rationale"])
            assert s["scores"] == pytest.approx(t["scores"], abs=1e-4)


@pytest.mark.parametrize("heuristic", ["rationalyst", "self_consistency"])
def test_kept_caches_choose_what_fresh_prefills_choose(tiny_llama_dir, tmp_path, heuristic):
    kept = run(tiny_llama_dir, tmp_path / "kept", heuristic, max_steps=4, step_max_tokens=5)
    fresh = run(tiny_llama_dir, tmp_path / "fresh", heuristic, max_steps=4, step_max_tokens=5, prefix_reuse="false")
    assert sum(len(r["steps"]) for r in kept) >= 4  # several rounds: later ones start from kept caches
    same_records(kept, fresh)


@pytest.mark.slow
def test_kept_caches_choose_what_fresh_prefills_choose_smollm2(smollm2_dir, tmp_path):
    def go(out, reuse):
        args = [
            "--dataset",
            "gsm_symbolic",
            "--limit",
            "2",
            "--heuristic",
            "rationalyst",
            "--output",
            str(out),
            "--model",
            "smollm2-135m-instruct",
            "--rationale-model",
            "smollm2-135m-instruct",
            "--device",
            "cpu",
            "--shots",
            "2",
            "--max-steps",
            "3",
            "--step-max-tokens",
            "24",
            "--rationale-max-tokens",
            "12",
            "--prefix-reuse",
            reuse,
        ]
        assert inference.main(args) == 0
        return [json.loads(line) for line in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]

    same_records(go(tmp_path / "kept", "true"), go(tmp_path / "fresh", "false"))


@pytest.mark.slow
@pytest.mark.parametrize("heuristic", ["rationalyst_explicit", "cot", "llm_judge"])
def test_explicit_cot_and_judge_baselines_run_end_to_end_on_the_demo_agent(
    smollm2_dir, tiny_llama_dir, tmp_path, heuristic
):
    """The paper's explicit variant, plain chain of thought and the verifier baseline with its own judge model
    (here a second, different model) through inference.main on SmolLM2 and chain_sum (numbers mean nothing)."""
    out = tmp_path / heuristic
    args = ["--dataset", "chain_sum", "--limit", "2", "--heuristic", heuristic, "--output", str(out)]
    args += ["--model", "smollm2-135m-instruct", "--rationale-model", "smollm2-135m-instruct", "--device", "cpu"]
    args += ["--shots", "2", "--k", "2", "--max-steps", "2", "--step-max-tokens", "16", "--rationale-max-tokens", "12"]
    args += ["--judge-model", tiny_llama_dir]
    assert inference.main(args) == 0
    records = [json.loads(line) for line in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all("prediction" in r and isinstance(r["correct"], bool) for r in records)
    steps = [s for r in records for s in r["steps"]]
    if heuristic == "cot":
        assert all(r["n_steps"] == 1 for r in records)
    else:
        assert steps and all(len(s["candidates"]) == 2 and len(s["scores"]) == 2 for s in steps)
    if heuristic == "rationalyst_explicit":
        assert all(s["rationale"] for s in steps)  # the chosen candidate's rationale, shown next round
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["heuristic"] == heuristic and manifest["counts"]["out"] == 2
    assert manifest["config"]["judge_model"] == tiny_llama_dir


class Rationales(StepScorer):
    """Known scores and a known rationale per candidate (the confidence scorer's outputs)."""

    def __init__(self, scores):
        self.scores = scores

    def score_with_rationales(self, batch, prepared):
        return [list(self.scores) for _ in batch], [[f"why {s}" for s in c.steps] for c in batch]


def test_explicit_variant_shows_the_chosen_rationale_next_round(tmp_path):
    """6.5's explicit supervision: the candidate chosen by RATIONALYST's confidence, then its rationale in the
    agent's prompt of the next round; the hint variant shows the rationale before the agent proposes."""
    cfg = cfg_for(f"gsm8k={write_local(tmp_path, 'gsm8k')}", heuristic="rationalyst_explicit", max_steps=2)
    task, questions, context_of = inference.load_questions(cfg)
    agent = Proposer(["Step a.", "Step b.", "Step c."])
    [[rec]] = inference.run_batch(cfg, task, context_of, agent, Rationales([0.1, 0.9, 0.5]), questions)
    assert [s["chosen"] for s in rec["steps"]] == [1, 1] and rec["steps"][0]["rationale"] == "why Step b."
    first, second = agent.prompts[0], agent.prompts[1]
    assert first[-1]["role"] == "user"  # nothing shown before the first step
    assert second[-2:] == [
        {"role": "assistant", "content": "Step b."},
        {"role": "assistant", "content": "Rationale: why Step b."},
    ]

    class Hint(StepScorer):
        def prepare(self, contexts):
            return [f"hint {len(c.steps)}" for c in contexts]

        def score(self, batch, prepared):
            return [[0.0, 1.0, 0.0] for _ in batch]

    (tmp_path / "h").mkdir()
    cfg = cfg_for(f"gsm8k={write_local(tmp_path / 'h', 'gsm8k')}", heuristic="rationalyst_hint", max_steps=2)
    task, questions, context_of = inference.load_questions(cfg)
    agent = Proposer(["Step a.", "Step b.", "Step c."])
    inference.run_batch(cfg, task, context_of, agent, Hint(), questions)
    assert agent.prompts[0][-1] == {"role": "assistant", "content": "Rationale: hint 0"}
    assert agent.prompts[1][-1] == {"role": "assistant", "content": "Rationale: hint 1"}


def test_cot_writes_one_full_solution_from_one_turn_shots(tmp_path):
    cfg = cfg_for(f"gsm8k={write_local(tmp_path, 'gsm8k')}", heuristic="cot", shots=1, max_steps=5, step_max_tokens=7)
    task, questions, context_of = inference.load_questions(cfg)
    msgs = context_of(questions[0])
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]  # the shot's steps as one turn
    budgets = []

    class Whole(Proposer):
        def generate(self, prompts, n=1, **kw):
            budgets.append((n, kw["temperature"], kw["max_tokens"]))
            return super().generate(prompts, n, **kw)

    [[rec]] = inference.run_batch(
        cfg, task, context_of, Whole(["She has 2 pens and buys 3 more, so 5 in all."]), None, questions
    )
    assert budgets == [(1, 0.0, 35)] and rec["n_steps"] == 1 and rec["stopped"] == "solution"
    assert rec["prediction"] == "5" and rec["correct"] is True  # flexible extraction reads the last number


def test_self_consistency_votes_over_lanes_that_answer(tmp_path):
    cfg = cfg_for(f"gsm8k={write_local(tmp_path, 'gsm8k')}", heuristic="self_consistency", k=3, max_steps=2)
    task, questions, context_of = inference.load_questions(cfg)

    class PerLane:
        """Lane 0 answers 5, lane 1 answers 4, lane 2 answers 5 (seed + lane tells the lanes apart)."""

        def generate(self, prompts, n=1, seed=0, **kw):
            lane = (seed - cfg.seed) % 1000
            return [
                Completion(texts=[["The answer is 5.", "The answer is 4.", "The answer is 5."][lane]]) for _ in prompts
            ]

    [[rec]] = inference.run_batch(cfg, task, context_of, PerLane(), None, questions)
    assert [lane["answer"] for lane in rec["lanes"]] == ["5", "4", "5"]
    assert rec["prediction"] == "5" and rec["correct"] is True


@pytest.mark.parametrize("heuristic", ["rationalyst", "self_consistency"])
def test_streams_choose_what_round_by_round_batches_choose(tiny_llama_dir, tmp_path, heuristic):
    """Questions on their own threads (--streams) write the records that one batched call per round writes:
    a trajectory's seeds are its own, whichever questions share a call."""
    together = run(tiny_llama_dir, tmp_path / "together", heuristic, max_steps=3, step_max_tokens=5)
    streamed = run(tiny_llama_dir, tmp_path / "streamed", heuristic, max_steps=3, step_max_tokens=5, streams=2)
    same_records(together, streamed)


class Paced:
    """A stand-in agent whose answers take a question-dependent time; it logs when each call starts and ends."""

    def __init__(self, seconds_for):
        self.seconds_for, self.calls, self.clock = seconds_for, [], __import__("threading").Lock()

    def generate(self, prompts, n=1, **kw):
        import time

        questions = [next(m["content"] for m in reversed(p) if m["role"] == "user") for p in prompts]
        started = time.monotonic()
        time.sleep(max(self.seconds_for(p) for p in prompts))
        with self.clock:
            self.calls.append((sorted({q.split("\n")[0] for q in questions}), started, time.monotonic()))
        return [Completion(texts=["Let me think."] * n) for _ in prompts]


def test_a_streamed_question_sends_its_next_round_without_waiting_for_the_others(tmp_path):
    """With --streams, a fast question's rounds go out while a slow question's first round is still out; round
    by round, both ride in one call per round and the fast one waits for the slow one."""
    f = tmp_path / "gsm.jsonl"
    f.write_text("".join(json.dumps({"question": q, "answer": "#### 1"}) + "\n" for q in ("Slow?", "Fast?")))

    def seconds_for(prompt):
        return 0.6 if "Slow?" in json.dumps(prompt) else 0.02

    cfg = cfg_for(f"gsm8k={f}", heuristic="greedy", shots=0, max_steps=3, streams=2)
    task, questions, context_of = inference.load_questions(cfg)
    assert len(questions) == 2
    agent = Paced(seconds_for)
    inference.run_batch(cfg, task, context_of, agent, None, questions)
    slow = [c for c in agent.calls if "Slow" in c[0][0]]
    fast = [c for c in agent.calls if "Fast" in c[0][0]]
    assert len(slow) == len(fast) == 3 and all(len(c[0]) == 1 for c in agent.calls)
    assert fast[-1][2] < slow[0][2]  # all three of the fast question's rounds ended inside the slow one's first

    agent = Paced(seconds_for)
    inference.run_batch(replace(cfg, streams=0), task, context_of, agent, None, questions)
    assert len(agent.calls) == 3 and all(len(c[0]) == 2 for c in agent.calls)  # one call per round, both in it

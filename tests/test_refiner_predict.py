import json

import pytest
import torch

from common import training
from common.tasks.refiner import mwp
from common.tasks.refiner.format import NO_HINT, critic_input, is_no_hint, refine_input
from common.tasks.refiner.seq2seq import generate, load_seq2seq
from model_inference import refiner_predict
from tests.conftest import CSV


def memorise(base: str, pairs: list[tuple[str, str]], out, steps: int = 300) -> str:
    """Train a tiny seq2seq on (input, target) pairs until it repeats them (a plain loop over
    common.training's example builder and collator: the Trainer's per-step overhead is too slow here)."""
    torch.manual_seed(0)
    model, tok = load_seq2seq(base, "cpu")
    batch = training.collate(tok.pad_token_id)([training.seq2seq_example(tok, a, b, 128) for a, b in pairs])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a busy CPU: several threads only contend
    try:
        for _ in range(steps):
            loss = model(**batch).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            if loss.item() < 0.01:
                break
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def trained(tiny_t5_dir, tmp_path_factory):
    """A tiny generator that has memorised x -> z for the six problems, and a tiny critic trained on
    gold hypotheses (-> "No hint.") and one perturbation each (-> the oracle's feedback)."""
    tmp = tmp_path_factory.mktemp("refiner-predict")
    (tmp / "mwp.csv").write_text(CSV)
    examples = mwp.load_examples(tmp / "mwp.csv")
    swap = {"add": "subtract", "subtract": "add", "multiply": "divide", "divide": "multiply"}
    wrong = {
        e["id"]: e["z"].replace(f"#0: {op}", f"#0: {swap[op]}") for e in examples for op in [mwp.parse(e["z"])[0].op]
    }
    critic_pairs = [(critic_input(e["x"], e["z"]), NO_HINT) for e in examples] + [
        (critic_input(e["x"], wrong[e["id"]]), mwp.critique(e, wrong[e["id"]])) for e in examples[:3]
    ]
    return {
        "csv": str(tmp / "mwp.csv"),
        "examples": examples,
        "gen": memorise(tiny_t5_dir, [(e["x"], e["z"]) for e in examples], tmp / "gen"),
        "critic": memorise(tiny_t5_dir, critic_pairs, tmp / "critic"),
    }


@pytest.mark.slow
def test_a_briefly_trained_critic_says_no_hint_for_gold_hypotheses(trained):
    model, tok = load_seq2seq(trained["critic"], "cpu")
    said = generate(model, tok, [critic_input(e["x"], e["z"]) for e in trained["examples"]], max_new_tokens=16)
    assert said == [NO_HINT] * len(said)


@pytest.mark.slow
def test_oracle_prediction_stops_at_no_hint_and_reports_every_turn(trained, tmp_path):
    # a gold the generator cannot have memorised: the oracle keeps giving feedback for all 3 rounds
    csv = tmp_path / "mwp.csv"
    csv.write_text(CSV.replace("18 10,+ number0 number1,28.0", "18 10,- number0 number1,8.0"))
    out = tmp_path / "oracle"
    assert (
        refiner_predict.main(
            [
                "--task",
                "mwp",
                "--input",
                str(csv),
                "--generator",
                trained["gen"],
                "--critic",
                "oracle",
                "--output",
                str(out),
                "--max-new-tokens",
                "64",
                "--batch-size",
                "4",
            ]
        )
        == 0
    )
    records = {r["id"]: r for r in map(json.loads, (out / "part-00000-of-00001.jsonl").read_text().splitlines())}
    first = records.pop("mwp-0")
    assert len(first["turns"]) == 4 and not first["stopped"]  # z0 + T=3 refinements
    assert all(t["feedback"] == mwp.oracle_feedback(t["z"], first["gold"]) for t in first["turns"][:3])
    assert first["turns"][3]["feedback"] is None
    memorised = [r for r in records.values() if mwp.equations_match(r["turns"][0]["z"], r["gold"])]
    assert len(memorised) >= 4
    for r in memorised:  # stopped right after turn 0
        assert r["stopped"] and len(r["turns"]) == 1 and r["turns"][0]["feedback"] == NO_HINT
    metrics = json.loads((out / "metrics.json").read_text())
    assert [row["turn"] for row in metrics["turns"]] == [0, 1, 2, 3]
    turn0 = mwp.metrics(mwp.load_examples(csv), [records.get(f"mwp-{i}", first)["turns"][0]["z"] for i in range(6)])
    assert metrics["turns"][0]["equation_em"] == turn0["equation_em"]
    assert metrics["turns"][1]["stopped_before"] == len([r for r in records.values() if r["stopped"]])


@pytest.mark.slow
def test_trained_critic_feedback_is_what_the_generator_sees(trained, tmp_path):
    out = tmp_path / "critic"
    assert (
        refiner_predict.main(
            [
                "--task",
                "mwp",
                "--input",
                trained["csv"],
                "--generator",
                trained["gen"],
                "--critic",
                trained["critic"],
                "--output",
                str(out),
                "--max-new-tokens",
                "64",
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]
    critic_model, tok = load_seq2seq(trained["critic"], "cpu")
    for r in records:
        said = generate(critic_model, tok, [critic_input(r["x"], r["turns"][0]["z"])], max_new_tokens=64)[0]
        assert r["turns"][0]["feedback"] == said  # the trained critic, not the oracle
        assert len(r["turns"]) == (1 if said == NO_HINT else 2)  # paper: T = 1 with a trained critic
    assert [row["turn"] for row in json.loads((out / "metrics.json").read_text())["turns"]] == [0, 1]


@pytest.mark.slow
def test_critic_evaluation_reports_exact_match_and_no_hint_precision_recall(trained, tmp_path):
    # issue 13 deliver: the critic's own accuracy on critic records (refiner.md 2.6), here its 9 training
    # records plus 3 perturbations it never saw
    from common.tasks.refiner.format import critic_scores

    examples = trained["examples"]
    swap = {"add": "multiply", "subtract": "divide", "multiply": "add", "divide": "subtract"}
    unseen = {
        e["id"]: e["z"].replace(f"#0: {op}", f"#0: {swap[op]}") for e in examples for op in [mwp.parse(e["z"])[0].op]
    }
    records = [
        {"id": f"{e['id']}-gold", "kind": "gold", "input": critic_input(e["x"], e["z"]), "target": NO_HINT}
        for e in examples
    ]
    records += [
        {
            "id": f"{e['id']}-op",
            "kind": "operator",
            "input": critic_input(e["x"], unseen[e["id"]]),
            "target": mwp.critique(e, unseen[e["id"]]),
        }
        for e in examples[3:]
    ]
    path = tmp_path / "critic" / "part-00000-of-00001.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "eval"
    args = ["--task", "mwp", "--critic", trained["critic"], "--critic-records", str(path.parent), "--output", str(out)]
    assert refiner_predict.main(args + ["--max-new-tokens", "64"]) == 0
    got = json.loads((out / "critic_metrics.json").read_text())
    model, tok = load_seq2seq(trained["critic"], "cpu")
    said = generate(model, tok, [r["input"] for r in records], max_new_tokens=64)
    want = critic_scores([r["target"] for r in records], said, [r["kind"] for r in records])
    assert {k: got[k] for k in want} == want and got["n"] == 9 and got["no_hint_n"] == 6
    assert got["no_hint_recall"] == got["exact_match_gold"] == 100.0  # the memorised gold hypotheses
    lines = [json.loads(line) for line in (out / "critic_predictions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["feedback"]) for r in lines] == [(r["id"], f) for r, f in zip(records, said)]
    with pytest.raises(SystemExit, match="trained critic"):
        refiner_predict.main(["--critic", "oracle", "--critic-records", str(path.parent), "--output", str(out)])


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a busy CPU: several threads only contend
    yield
    torch.set_num_threads(threads)


def test_turn_one_is_generated_from_x_the_previous_z_and_the_trained_critics_feedback(
    input_sensitive_t5_dir, tmp_path, one_thread
):
    # issue 18.1: a critic that gives feedback (this untrained one never says "No hint."), so the refinement
    # input is used; the generator's output depends on all of its input, so turn 1's z shows whether it was
    # given refine_input(x, z0, the trained critic's feedback), rather than x alone or the oracle's feedback
    (tmp_path / "mwp.csv").write_text(CSV)
    out, model_dir = tmp_path / "critic", input_sensitive_t5_dir
    args = ["--task", "mwp", "--input", str(tmp_path / "mwp.csv"), "--generator", model_dir, "--critic", model_dir]
    assert refiner_predict.main(args + ["--output", str(out), "--max-new-tokens", "12"]) == 0
    records = [json.loads(line) for line in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]
    model, tok = load_seq2seq(model_dir, "cpu")
    examples = mwp.load_examples(tmp_path / "mwp.csv")
    z0 = [r["turns"][0]["z"] for r in records]
    said = generate(model, tok, [critic_input(e["x"], z) for e, z in zip(examples, z0)], max_new_tokens=12)
    assert [r["turns"][0]["feedback"] for r in records] == said and not any(map(is_no_hint, said))
    want = generate(model, tok, [refine_input(e["x"], z, f) for e, z, f in zip(examples, z0, said)], max_new_tokens=12)
    assert [r["turns"][1]["z"] for r in records] == [r["final"] for r in records] == want
    assert sum(w != z for w, z in zip(want, z0)) >= 4  # turn 1 differs from what x alone gives
    oracle = [mwp.critique(e, z) for e, z in zip(examples, z0)]
    assert oracle != said


def test_per_turn_metrics_carry_a_stopped_answer_forward():
    ex = [
        {"id": "a", "z": "#0: add ( number0, number1 ) | EOS", "numbers": [1.0, 2.0], "answer": 3.0},
        {"id": "b", "z": "#0: subtract ( number0, number1 ) | EOS", "numbers": [5.0, 2.0], "answer": 3.0},
    ]
    recs = [
        {"id": "a", "turns": [{"z": "#0: add ( number1, number0 ) | EOS"}]},  # stopped, commutative
        {
            "id": "b",
            "turns": [{"z": "#0: add ( number0, number1 ) | EOS"}, {"z": "#0: subtract ( number0, number1 ) | EOS"}],
        },
    ]
    rows = refiner_predict.per_turn_metrics(mwp, ex, recs, 2)
    assert [r["equation_em"] for r in rows] == [50.0, 100.0, 100.0]
    assert [r["stopped_before"] for r in rows] == [0, 1, 2]
    assert "equation_em" in refiner_predict.format_table(rows)


def test_paired_turns_counts_gains_and_losses_and_tests_them():
    right, wrong = "#0: add ( number0, number1 ) | EOS", "#0: subtract ( number0, number1 ) | EOS"
    ex = [{"id": str(i), "z": right, "numbers": [1.0, 2.0], "answer": 3.0} for i in range(20)]
    # 12 wrong at turn 0 and right after feedback, 2 right at turn 0 and wrong after, 6 right throughout
    recs = [{"id": str(i), "turns": [{"z": wrong}, {"z": right}]} for i in range(12)]
    recs += [{"id": str(i), "turns": [{"z": right}, {"z": wrong}]} for i in range(12, 14)]
    recs += [{"id": str(i), "turns": [{"z": right}]} for i in range(14, 20)]
    p = refiner_predict.paired_turns(mwp, ex, recs, 3)
    assert p["metric"] == "equation_em" and p["n"] == 20
    assert p["turn_0"]["mean"] == 40.0 and p["turn_3"]["mean"] == 90.0
    assert p["mcnemar"] == {"gained": 12, "lost": 2, "p": refiner_predict.mcnemar_exact(12, 2)}
    assert p["mcnemar"]["p"] < 0.05
    assert p["difference"]["difference"] == 50.0 and 0 < p["difference"]["ci95"][0] < 50 < p["difference"]["ci95"][1]
    assert p["turn_0"]["ci95"][0] < 40 < p["turn_0"]["ci95"][1]
    line = refiner_predict.describe_paired(p)
    assert "turn 0 40.0" in line and "turn 3 90.0" in line and "12 gained, 2 lost" in line


def test_paired_turns_has_no_mcnemar_for_a_graded_metric():
    from common.tasks.refiner import moral_stories

    ex = [
        moral_stories._example(
            "a", "Tom sees a friend.", "Tom wants to be kind.", "Tom leaves.", "It is good to help.", "Tom helps.", {}
        )
    ]
    recs = [{"id": "a", "turns": [{"z": "It is bad. Moral action: Tom helps."}, {"z": "It is good to help."}]}]
    p = refiner_predict.paired_turns(moral_stories, ex, recs, 1, n_boot=50)
    assert p["metric"] == "norm_rouge_l" and "mcnemar" not in p and 0 < p["turn_1"]["mean"] <= 100


def test_feedback_effect_counts_what_the_first_feedback_changed():
    right, wrong = "#0: add ( number0, number1 ) | EOS", "#0: subtract ( number0, number1 ) | EOS"
    other = "#0: multiply ( number0, number1 ) | EOS"
    ex = [{"id": str(i), "z": right, "numbers": [1.0, 2.0], "answer": 3.0} for i in range(5)]
    op = "the operator in #0 is incorrect."
    recs = [
        {"id": "0", "turns": [{"z": wrong, "feedback": op}, {"z": right}]},  # fixed
        {"id": "1", "turns": [{"z": wrong, "feedback": op}, {"z": wrong}]},  # ignored the feedback
        {"id": "2", "turns": [{"z": wrong, "feedback": op}, {"z": other}]},  # changed, still wrong
        {"id": "3", "turns": [{"z": right, "feedback": "the first number in #0 is incorrect."}, {"z": wrong}]},
        {"id": "4", "turns": [{"z": right, "feedback": NO_HINT}]},  # accepted: no second turn
    ]
    rows = refiner_predict.feedback_effect(mwp, ex, recs)
    assert rows == [
        {"feedback": "the operator in #k is incorrect.", "n": 3, "changed": 2, "better": 1, "worse": 0},
        {"feedback": "the first number in #k is incorrect.", "n": 1, "changed": 1, "better": 0, "worse": 1},
        {"feedback": "all", "n": 4, "changed": 3, "better": 1, "worse": 1},
    ]
    table = refiner_predict.format_table(rows).splitlines()
    assert table[0].split() == ["feedback", "n", "changed", "better", "worse"]
    assert table[1].split()[-4:] == ["3", "2", "1", "0"] and "the operator in #k is incorrect." in table[1]

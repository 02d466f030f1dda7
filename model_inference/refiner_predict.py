"""REFINER prediction (refiner.md 5): generate z, ask the critic, refine, up to T rounds.

Per example: z_0 = greedy generator output for x; then for t = 1..T: the critic's feedback f on
z_{t-1} (a trained critic checkpoint on critic_input(x, z), or `oracle` = task.critique against
the gold, the upper bound); stop when f is "No hint." (common.tasks.refiner.format.is_no_hint);
otherwise z_t = generator(refine_input(x, z_{t-1}, f)). All examples of a batch advance together.

Fixed against the reference (0.2, 5): the trained critic's feedback is what the generator sees
(the reference computed it and then used the oracle's); one generator for every turn (not a
second one from a hard-coded folder); the "No hint" stop; any batch size; no hard-coded test size.
`--turns 0` is the paper's choice: T = 3 with the oracle, T = 1 with a trained critic.

Writes one record per example ({id, x, gold, turns: [{z, feedback}, ...], final, stopped}) and,
once every shard is done, metrics.json with the task's metrics per turn: turn 0 is before any
feedback, turn t uses each example's latest z after t critic rounds (a stopped example keeps its
answer). The table is also printed, and metrics.json's `paired` compares turn 0 with the last turn on the
task's headline metric (`HEADLINE`: MWP equation EM, sNLR IR exact match, Moral Stories norm ROUGE-L) on
the same examples: each turn's mean with its 95% bootstrap interval, the paired bootstrap of the difference,
and McNemar's exact test where the metric is right or wrong per example; `feedback_effect` counts, per kind
of first feedback, the examples whose z changed at turn 1 and those that scored higher or lower for it.

    python -m model_inference.refiner_predict --task mwp --input ../shared/data/svamp/mawps-asdiv-a_svamp_dev.csv \
        --generator runs/mwp/refiner/best --critic runs/mwp/critic/final --output runs/mwp/predict-critic

`--critic-records` evaluates the trained critic alone (refiner.md 2.6): its feedback on held-out critic
records (training.critic_data's critic/ from data it did not train on) against their oracle targets;
critic_metrics.json holds feedback exact match (sentence-level, order-insensitive, as the paper), the
precision and recall of its "No hint." and exact match per record kind:

    python -m model_inference.refiner_predict --task mwp --critic runs/mwp/critic/final \
        --critic-records runs/mwp/critic-data-dev/critic --output runs/mwp/critic-eval
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.artifacts import BadRecordError, read_records, write_json_atomic
from common.config import StageConfig, option, parse_config
from common.models import DeviceOptions, pick_device
from common.report import format_table
from common.stage import log, run_stage, shard_finished
from common.stats import bootstrap_ci, mcnemar_exact, paired_bootstrap
from common.tasks import refiner as refiner_tasks
from common.tasks.refiner.format import canonical, critic_input, critic_scores, is_no_hint, refine_input
from common.tasks.refiner.seq2seq import generate, load_seq2seq

ORACLE, NONE = "oracle", "none"


@dataclass
class RefinerPredictConfig(StageConfig, DeviceOptions):
    task: str = option("mwp", "REFINER task: mwp, snlr or moral_stories")
    generator: str = option("", "REFINER-trained generator (train_refiner's best/), registry name or Hub id")
    critic: str = option(
        ORACLE,
        "trained critic checkpoint (finetune's final/), 'oracle' (the gold-based upper "
        "bound) or 'none' (turn 0 only: the generator alone)",
    )
    turns: int = option(0, "critic rounds T; 0 = the paper's choice: 3 with the oracle, 1 with a trained critic (5)")
    numbers_from: str = option(
        "", "mwp: SVAMP's mawps-asdiv-a_svamp_dev.csv, for test files whose numbers cannot be indexed (answer accuracy)"
    )
    batch_size: int = option(32, "examples per batch (all advance together)")
    max_length: int = option(256, "input tokens")
    max_new_tokens: int = option(64, "tokens per generated z or feedback")
    limit: int = option(0, "only the first N examples (0 = all)")
    critic_records: str = option(
        "",
        "evaluate the trained --critic instead: held-out critic records (training.critic_data's critic/ folder "
        "or a .jsonl, built from data the critic did not train on) -> critic_metrics.json",
    )


def rounds(cfg: RefinerPredictConfig) -> int:
    if cfg.critic == NONE:
        return 0
    return cfg.turns or (3 if cfg.critic == ORACLE else 1)


def refine_batch(examples: list[dict], task, gen, critic, cfg: RefinerPredictConfig) -> list[dict]:
    """Run the generate-critique-refine loop for a batch; one record per example."""
    model, tok = gen
    gen_kw = dict(max_length=cfg.max_length, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    records = [{"id": e["id"], "x": e["x"], "gold": e["z"], "turns": [], "stopped": False} for e in examples]
    active = list(range(len(examples)))
    inputs = [e["x"] for e in examples]
    for t in range(rounds(cfg) + 1):
        for i, z in zip(active, generate(model, tok, [inputs[i] for i in active], **gen_kw)):
            records[i]["turns"].append({"z": z, "feedback": None})
        if t == rounds(cfg):
            break
        zs = [records[i]["turns"][-1]["z"] for i in active]
        if critic is None:
            feedback = [task.critique(examples[i], z) for i, z in zip(active, zs)]
        else:
            feedback = generate(
                critic[0], critic[1], [critic_input(examples[i]["x"], z) for i, z in zip(active, zs)], **gen_kw
            )
        still = []
        for i, z, f in zip(active, zs, feedback):
            records[i]["turns"][-1]["feedback"] = f
            if is_no_hint(f):
                records[i]["stopped"] = True
            else:
                inputs[i] = refine_input(examples[i]["x"], z, f)
                still.append(i)
        active = still
        if not active:
            break
    for r in records:
        r["final"] = r["turns"][-1]["z"]
    return records


def in_example_order(examples: list[dict], records: list[dict]) -> list[dict]:
    by_id = {r["id"]: r for r in records}
    return [by_id[e["id"]] for e in examples]


def at_turn(ordered: list[dict], t: int) -> list[str]:
    """Each example's z after t critic rounds (a stopped example keeps its last answer)."""
    return [r["turns"][min(t, len(r["turns"]) - 1)]["z"] for r in ordered]


def per_turn_metrics(task, examples: list[dict], records: list[dict], turns: int) -> list[dict]:
    ordered = in_example_order(examples, records)
    return [
        {
            "turn": t,
            "stopped_before": sum(len(r["turns"]) <= t for r in ordered),
            **task.metrics(examples, at_turn(ordered, t)),
        }
        for t in range(turns + 1)
    ]


def paired_turns(task, examples: list[dict], records: list[dict], last: int, n_boot: int = 2000, seed: int = 0):
    """Turn 0 against turn `last` on task.HEADLINE, per example (the task's metric is a mean over examples)."""
    ordered = in_example_order(examples, records)

    def scores(t: int) -> np.ndarray:
        return np.array([task.metrics([e], [z])[task.HEADLINE] for e, z in zip(examples, at_turn(ordered, t))])

    first, final = scores(0), scores(last)
    rng = np.random.default_rng(seed)

    def mean(units: Sequence[float]) -> float:
        return float(np.mean(units))

    out = {
        "metric": task.HEADLINE,
        "n": len(examples),
        "last_turn": last,
        "turn_0": {"mean": mean(first), "ci95": list(bootstrap_ci(first, n_boot, rng))},
        f"turn_{last}": {"mean": mean(final), "ci95": list(bootstrap_ci(final, n_boot, rng))},
        "difference": paired_bootstrap(list(final), list(first), mean, n_boot, rng),
    }
    if set(np.unique(np.concatenate([first, final]))) <= {0.0, 100.0}:
        gained, lost = int(((final > 0) & (first == 0)).sum()), int(((final == 0) & (first > 0)).sum())
        out["mcnemar"] = {"gained": gained, "lost": lost, "p": mcnemar_exact(gained, lost)}
    return out


def feedback_effect(task, examples: list[dict], records: list[dict], top: int = 8) -> list[dict]:
    """What the first feedback did: for the examples that got one (turn 0 not accepted), how many changed
    their z at turn 1, and how many of those scored higher or lower on task.HEADLINE, by the feedback's first
    sentence (step numbers as #k; the `top` most frequent, the rest as "other")."""
    ordered = in_example_order(examples, records)
    rows: dict[str, dict] = {}
    for e, r in zip(examples, ordered):
        if len(r["turns"]) < 2:
            continue
        said = canonical(r["turns"][0]["feedback"] or "").strip()
        kind = re.sub(r"#\d+", "#k", re.split(r"(?<=[.!?]) ", said)[0]) if said else "(empty)"
        z0, z1 = r["turns"][0]["z"], r["turns"][1]["z"]
        before, after = (task.metrics([e], [z])[task.HEADLINE] for z in (z0, z1))
        row = rows.setdefault(kind, {"feedback": kind, "n": 0, "changed": 0, "better": 0, "worse": 0})
        row["n"] += 1
        row["changed"] += z0 != z1
        row["better"] += after > before
        row["worse"] += after < before

    def total(label: str, group: list[dict]) -> dict:
        return {"feedback": label, **{k: sum(row[k] for row in group) for k in ("n", "changed", "better", "worse")}}

    ranked = sorted(rows.values(), key=lambda row: -row["n"])
    kept = ranked[:top] + ([total("other", ranked[top:])] if ranked[top:] else [])
    return kept + [total("all", kept)] if kept else []


def describe_paired(p: dict) -> str:
    last = f"turn_{p['last_turn']}"
    d = p["difference"]
    line = (
        f"{p['metric']}: turn 0 {p['turn_0']['mean']:.1f} {fmt_ci(p['turn_0']['ci95'])} -> {last.replace('_', ' ')} "
        f"{p[last]['mean']:.1f} {fmt_ci(p[last]['ci95'])}; difference {d['difference']:+.1f} {fmt_ci(d['ci95'])}, "
        f"paired bootstrap p {'< ' + format(d['p_floor'], '.3g') if d['p'] == 0 else '= ' + format(d['p'], '.3g')}"
    )
    if "mcnemar" in p:
        m = p["mcnemar"]
        line += f"; McNemar: {m['gained']} gained, {m['lost']} lost, exact p = {m['p']:.3g}"
    return line


def fmt_ci(ci) -> str:
    return f"[{ci[0]:.1f}, {ci[1]:.1f}]"


def load_task_examples(cfg: RefinerPredictConfig, task) -> list[dict]:
    examples = []
    for f in cfg.input.split(","):
        kw = {"svamp_dev": cfg.numbers_from} if cfg.task == "mwp" and cfg.numbers_from else {}
        examples.extend(task.load_examples(f.strip(), **kw))
    return examples[: cfg.limit] if cfg.limit else examples


def evaluate_critic(cfg: RefinerPredictConfig) -> dict:
    """The trained critic's feedback on held-out critic records against their oracle targets (refiner.md 2.6:
    the paper's critic accuracy per task, e.g. UQA-T5 220M: MWP 69.5, sNLR 95.5, Moral Stories 77.4)."""
    if cfg.critic in (ORACLE, NONE):
        raise SystemExit("--critic-records evaluates a trained critic: give its checkpoint as --critic")
    try:
        records = list(read_records(cfg.critic_records, cfg.on_bad_record, required=("id", "input", "target")))
    except (BadRecordError, FileNotFoundError) as exc:
        raise SystemExit(f"refiner_predict: {exc}") from None
    records = records[: cfg.limit] if cfg.limit else records
    model, tok = load_seq2seq(cfg.critic, pick_device(cfg.device))
    said = generate(
        model,
        tok,
        [r["input"] for r in records],
        max_length=cfg.max_length,
        max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size,
    )
    scores = critic_scores([r["target"] for r in records], said, [r.get("kind", "") for r in records])
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "critic_predictions.jsonl", "w") as fh:
        for r, f in zip(records, said):
            fh.write(json.dumps({"id": r["id"], "kind": r.get("kind"), "target": r["target"], "feedback": f}) + "\n")
    result = {"task": cfg.task, "critic": cfg.critic, "records": cfg.critic_records, **scores}
    write_json_atomic(out / "critic_metrics.json", result)
    print(f"{cfg.task}: critic {cfg.critic} on {len(records)} held-out critic records")
    print("\n".join(f"  {k}: {v}" for k, v in scores.items()))
    return result


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(RefinerPredictConfig, argv, __doc__)
    if cfg.critic_records:
        if not cfg.output:
            raise SystemExit("--output is required")
        refiner_tasks.get_task(cfg.task)
        evaluate_critic(cfg)
        return 0
    if not cfg.input or not cfg.output or not cfg.generator:
        raise SystemExit("--input, --generator and --output are required")
    task = refiner_tasks.get_task(cfg.task)
    examples = load_task_examples(cfg, task)
    rc = 0
    if not shard_finished(cfg, "refiner_predict"):
        device = pick_device(cfg.device)
        gen = load_seq2seq(cfg.generator, device)
        critic = None if cfg.critic in (ORACLE, NONE) else load_seq2seq(cfg.critic, device)
        rc = run_stage(
            "refiner_predict",
            cfg,
            lambda batch: [[r] for r in refine_batch(batch, task, gen, critic, cfg)],
            records=examples,
            batch_size=cfg.batch_size,
            total=len(examples),
        )
    finished = sorted(p for p in Path(cfg.output).glob("part-*.jsonl") if not p.name.endswith(".failures.jsonl"))
    records = [r for f in finished for r in read_records(f, "error")]
    if {r["id"] for r in records} >= {e["id"] for e in examples}:  # every shard is done
        rows = per_turn_metrics(task, examples, records, rounds(cfg))
        result = {"task": cfg.task, "critic": cfg.critic, "generator": cfg.generator, "turns": rows}
        if rounds(cfg):
            result["paired"] = paired_turns(task, examples, records, rounds(cfg), seed=cfg.seed)
            result["feedback_effect"] = feedback_effect(task, examples, records)
        write_json_atomic(Path(cfg.output) / "metrics.json", result)
        print(f"{cfg.task}: generator {cfg.generator}, critic {cfg.critic}\n{format_table(rows)}")
        if rounds(cfg):
            print(describe_paired(result["paired"]))
            print(f"the first feedback, and what the generator did with it:\n{format_table(result['feedback_effect'])}")
    else:
        log.info(
            "refiner_predict: %d of %d examples done; metrics.json is written when all shards are",
            len(records),
            len(examples),
        )
    return rc


if __name__ == "__main__":
    sys.exit(main())

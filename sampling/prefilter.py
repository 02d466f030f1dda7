"""Keep the web documents that look like reasoning (rationalyst.md section 2).

One centroid: the mean embedding of the pooled reference documents (GSM8K, ECQA, ARC-Challenge,
ProofWriter by default), cached. The corpus is streamed: a Hub data set (default: the Pile,
`monology/pile-uncopyrighted`, streamed, never downloaded whole) or local .jsonl (field
`text`) / .txt (blank-line-separated paragraphs) files. Both sides are preprocessed the same
way (lowercase, ASCII punctuation removed, whitespace collapsed, NLTK English stopwords
removed). Documents over `max_chars` are skipped; a document is kept when cosine(centroid,
document) >= threshold. Writes {"id", "text" (raw), "score", "source"}.

    python -m sampling.prefilter --input corpus/ --output runs/prefilter --reference-sets gsm8k=train.jsonl
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
import string
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.artifacts import ReadStats, read_jsonl, shard_files
from common.config import StageConfig, option, parse_config
from common.models import DeviceOptions, cache_dir, load_embedder
from common.stage import log, run_stage, shard_finished
from common.tasks.rationalyst import reference_texts

# NLTK's English stopword list (nltk.corpus.stopwords.words("english")), inlined: no download.
STOPWORDS = frozenset(
    """
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him his
himself she she's her hers herself it it's its itself they them their theirs themselves what which who whom this
that that'll these those am is are was were be been being have has had having do does did doing a an the and but
if or because as until while of at by for with about against between into through during before after above below
to from up down in out on off over under again further then once here there when where why how all any both each
few more most other some such no nor not only own same so than too very s t can will just don don't should
should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't
haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't
weren weren't won won't wouldn wouldn't""".split()
)
PUNCTUATION = str.maketrans("", "", string.punctuation)
PILE_SUBSETS_PAPER = ["FreeLaw", "StackExchange", "Wikipedia (en)", "DM Mathematics", "Ubuntu IRC", "HackerNews"]


@dataclass
class PrefilterConfig(StageConfig, DeviceOptions):
    input: str = option(
        "monology/pile-uncopyrighted", "corpus: Hub data set id (streamed) or local .jsonl/.txt file or folder"
    )
    corpus_split: str = option("train", "Hub split of the corpus")
    text_field: str = option("text", "field holding the document text (.jsonl and Hub)")
    embedder: str = option("all-minilm-l6-v2", "sentence embedder (paper: sentence-transformers/all-mpnet-base-v2)")
    reference_sets: list[str] = option(
        ["gsm8k", "ecqa", "arc", "proofwriter"], "reference sets pooled into the centroid; name or name=PATH"
    )
    reference_limit: int = option(0, "rows per reference set (0 = all)")
    threshold: float = option(0.3, "keep when cosine(centroid, document) >= this (rationalyst.md 2: 0.3)")
    max_chars: int = option(2000, "skip longer documents (rationalyst.md 2: 2000)")
    pile_subsets: list[str] = option(
        [],
        "keep only these Pile subsets (meta.pile_set_name); empty = all. "
        "The reference's MiniLM variant: " + ",".join(PILE_SUBSETS_PAPER),
    )
    remove_stopwords: bool = option(True, "drop NLTK English stopwords in preprocessing")
    limit: int = option(0, "stop after this many corpus documents (0 = all)")
    encode_batch: int = option(512, "documents per embedding call (sorted by length inside)")


def preprocess(text: str, remove_stopwords: bool = True) -> str:
    """lowercase, strip ASCII punctuation, collapse whitespace, drop stopwords (rationalyst.md 2)."""
    words = text.lower().translate(PUNCTUATION).split()
    return " ".join(w for w in words if not (remove_stopwords and w in STOPWORDS))


def centroid(cfg: PrefilterConfig, embedder) -> np.ndarray:
    """Mean embedding of all pooled reference documents (one centroid: larger sets weigh more), cached."""
    texts = [preprocess(t, cfg.remove_stopwords) for t in reference_texts(cfg.reference_sets, cfg.reference_limit)]
    if not texts:
        raise ValueError("the reference sets gave no documents")
    key = hashlib.sha256(json.dumps([cfg.embedder, texts]).encode()).hexdigest()[:24]
    path = cache_dir() / "centroids" / f"{key}.npy"
    if path.exists():
        return np.load(path)
    log.info("prefilter: embedding %d reference documents for the centroid (cached at %s)", len(texts), path)
    vec = np.asarray(embedder.encode(texts, batch_size=64, show_progress_bar=False), dtype=np.float32).mean(axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{id(vec)}.npy")
    np.save(tmp, vec)
    tmp.replace(path)
    return vec


CORPUS_SUFFIXES = (".jsonl", ".jsonl.zst", ".jsonl.gz", ".txt")


def local_corpus_files(spec: str) -> list[Path] | None:
    """The local files of the corpus, sorted: a file, a folder (searched recursively for .jsonl,
    .jsonl.zst, .jsonl.gz and .txt), a glob, or several of these comma-separated. None when `spec` is one
    name that is nothing local (then it is a Hub data set id)."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    files: list[Path] = []
    for part in parts:
        path = Path(part)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(CORPUS_SUFFIXES))
        elif path.is_file():
            files.append(path)
        elif any(c in part for c in "*?["):  # a glob
            files += sorted(Path(p) for p in glob.glob(part, recursive=True) if Path(p).is_file())
        elif len(parts) == 1:
            return None
        else:
            raise FileNotFoundError(f"corpus file {part} (in --input {spec}) does not exist")
    return files


def corpus_records(cfg: PrefilterConfig, stats: ReadStats) -> tuple[Iterator[dict], bool, list[str]]:
    """(records, presharded, the local files this task reads). Several files (local, or a Hub data set's files) are sharded by file: each
    array task reads only its own files (artifacts.shard_files). Rows are sliced by the runner only when
    there are fewer files than tasks."""
    files = local_corpus_files(cfg.input)
    if files is not None:
        if not files:
            raise FileNotFoundError(f"corpus {cfg.input} holds no {', '.join(CORPUS_SUFFIXES)} files")
        mine = shard_files(files, cfg.shard_index, cfg.num_shards)
        if mine is None and cfg.num_shards > 1:
            log.warning(
                "prefilter: %d file(s) for %d tasks: every task reads the whole corpus (split it into at least "
                "%d files to shard by file)",
                len(files),
                cfg.num_shards,
                cfg.num_shards,
            )
        log.info("prefilter: task %d reads %d of %d corpus file(s)", cfg.shard_index, len(mine or files), len(files))
        roots = [Path(p.strip()) for p in cfg.input.split(",")]
        read = mine or files
        return _local_records(read, roots, cfg, stats), mine is not None, [str(f) for f in read]
    return hub_records(cfg.input, cfg.corpus_split, cfg.text_field, cfg.shard_index, cfg.num_shards), True, []


def hub_stream(name: str, split: str, index: int, count: int, **load_kw):
    """Task `index` of `count` of a streamed data set. When the data set has at least `count` files
    (`n_shards`), each task streams only its own files; otherwise (with a warning) every task streams all
    of it and keeps every count-th row, which is what `split_dataset_by_node` does unless `count` divides
    the file count (the Pile's 30 train files and 8 tasks: each task would decode the whole corpus)."""
    from datasets import load_dataset
    from datasets.distributed import split_dataset_by_node

    stream = load_dataset(name, split=split, streaming=True, **load_kw)
    if count <= 1:
        return stream
    if stream.n_shards >= count:
        return stream.shard(num_shards=count, index=index, contiguous=False)
    log.warning(
        "prefilter: %s has %d file(s) for %d tasks: every task streams the whole corpus", name, stream.n_shards, count
    )
    return split_dataset_by_node(stream, rank=index, world_size=count)


def hub_records(name: str, split: str, text_field: str, index: int, count: int, **load_kw) -> Iterator[dict]:
    for k, row in enumerate(hub_stream(name, split, index, count, **load_kw)):
        meta = row.get("meta") or {}
        yield {
            "id": f"{index}-{k}",
            "text": row[text_field],
            "source": meta.get("pile_set_name", name) if isinstance(meta, dict) else name,
        }


def _local_records(files: list[Path], roots: list[Path], cfg: PrefilterConfig, stats: ReadStats) -> Iterator[dict]:
    for f in files:
        # ids name the file relative to the corpus folder: unique across sub-folders, stable across shardings
        root = next((r for r in roots if r.is_dir() and f.is_relative_to(r)), None)
        name = f.relative_to(root).as_posix() if root else f.name
        if f.suffix == ".txt":
            paragraphs = re.split(r"\n\s*\n", f.read_text(encoding="utf-8"))
            rows = ({"text": p.strip()} for p in paragraphs if p.strip())
        else:
            rows = read_jsonl(f, cfg.on_bad_record, stats, required=(cfg.text_field,))
        for k, row in enumerate(rows):
            meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
            yield {
                "id": f"{name}:{k}",
                "text": row[cfg.text_field] if f.suffix != ".txt" else row["text"],
                "source": meta.get("pile_set_name", f.name),
            }


def _limited(records: Iterator[dict], limit: int) -> Iterator[dict]:
    for k, rec in enumerate(records):
        if limit and k >= limit:
            return
        yield rec


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(PrefilterConfig, argv, __doc__)
    if shard_finished(cfg, "prefilter"):
        return 0
    embedder = load_embedder(cfg.embedder, cfg.device)
    center = centroid(cfg, embedder)
    unit_center = center / np.linalg.norm(center)
    counts = {"too_long": 0, "other_subset": 0, "below_threshold": 0}
    subsets = set(cfg.pile_subsets)

    def process(batch: list[dict]) -> list[list[dict]]:
        results: list[list[dict] | None] = [None] * len(batch)
        todo = []
        for i, doc in enumerate(batch):
            if len(doc["text"]) > cfg.max_chars:
                counts["too_long"] += 1
                results[i] = []
            elif subsets and doc["source"] not in subsets:
                counts["other_subset"] += 1
                results[i] = []
            else:
                todo.append(i)
        if todo:
            vecs = embedder.encode(
                [preprocess(batch[i]["text"], cfg.remove_stopwords) for i in todo],
                batch_size=64,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            for i, score in zip(todo, (vecs @ unit_center).tolist()):
                keep = score >= cfg.threshold
                counts["below_threshold"] += not keep
                results[i] = [{**batch[i], "score": round(score, 6)}] if keep else []
        return results

    stats = ReadStats()
    records, presharded, files = corpus_records(cfg, stats)
    return run_stage(
        "prefilter",
        cfg,
        process,
        records=_limited(records, cfg.limit),
        batch_size=cfg.encode_batch,
        presharded=presharded,
        extra_counts=counts,
        extra_info=lambda: {"corpus_files": files},
        read_stats=stats,
    )


if __name__ == "__main__":
    sys.exit(main())

"""The prefilter stage against a bare SentenceTransformer.encode, and its memory as the corpus grows.

1. Throughput: documents/s of the stage (read, preprocess, embed, score, write; the manifest's wall
   time) against `encode` of the same preprocessed texts already in memory, same batch size, one
   process, interleaved runs, medians. Goal: at least 0.9x.
2. Memory: peak RSS of the stage, each run in a fresh process, on N documents and on 10N.
   Goal: within 10% (the corpus is streamed, never held).

    python bench/prefilter.py            # MiniLM on CPU, N = 400
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import time_interleaved


def write_corpus(path: Path, n: int) -> None:
    """Prose paragraphs and worked problems (as in the demo), numbered so that no two are equal."""
    from common.demo import corpus_texts

    base = corpus_texts(n_prose=60, n_problems=40)
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"text": f"{base[i % len(base)]} ({i})"}) + "\n")


def stage_args(corpus: Path, out: Path) -> list[str]:
    return [
        "--input",
        str(corpus),
        "--output",
        str(out),
        "--reference-sets",
        "gsm_symbolic",
        "--reference-limit",
        "200",
        "--device",
        "cpu",
    ]


def child(corpus: str, out: str) -> None:
    """Run the stage once in this process and print its peak RSS."""
    from sampling import prefilter

    prefilter.main(stage_args(Path(corpus), Path(out)))
    print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=2, metavar=("CORPUS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)

    from common.models import load_embedder
    from sampling import prefilter

    tmp = Path(tempfile.mkdtemp(prefix="bench-prefilter-"))
    small, large = tmp / "corpus-1x.jsonl", tmp / "corpus-10x.jsonl"
    write_corpus(small, args.docs)
    write_corpus(large, 10 * args.docs)
    texts = [prefilter.preprocess(json.loads(l)["text"]) for l in small.read_text().splitlines()]
    embedder = load_embedder("all-minilm-l6-v2", device="cpu")
    prefilter.main(stage_args(small, tmp / "warm"))  # centroid cached, caches warm

    runs = iter(range(10**6))
    stage_seconds: list[float] = []

    def stage() -> None:
        out = tmp / f"stage-{next(runs)}"
        prefilter.main(stage_args(small, out))
        stage_seconds.append(json.loads((out / "manifest.json").read_text())["wall_seconds"])

    t = time_interleaved(
        {
            "stage": stage,
            "bare": lambda: embedder.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False),
        },
        args.repeats,
    )
    stage_s = sorted(stage_seconds)[len(stage_seconds) // 2]
    print(f"corpus: {args.docs} documents (prose + worked problems), MiniLM on CPU")
    print(f"stage        : {args.docs / stage_s:7.1f} docs/s  ({stage_s:.2f} s, manifest wall time)")
    print(f"bare encode  : {args.docs / t['bare']:7.1f} docs/s  ({t['bare']:.2f} s, same texts in memory)")
    print(f"ratio        : {t['bare'] / stage_s:.2f}x  (goal >= 0.9x)")

    peaks = {}
    for name, corpus in (("1x", small), ("10x", large)):
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(corpus), str(tmp / f"mem-{name}")],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        peaks[name] = json.loads(done.stdout.strip().splitlines()[-1])["maxrss_mb"]
    print(
        f"peak RSS     : {peaks['1x']:.0f} MB at {args.docs} docs, {peaks['10x']:.0f} MB at {10 * args.docs} "
        f"docs ({peaks['10x'] / peaks['1x'] - 1:+.1%}; goal within 10%)"
    )


if __name__ == "__main__":
    main()

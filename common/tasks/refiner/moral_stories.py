"""Moral Stories (Emelin et al. 2021) for REFINER: moral norm and moral action generation (refiner.md 1.3, 2.4).

  x  `<|SIT|> {situation} <|INT|> {intention} <|I_ACT|> {immoral_action} <|NRM|>`   (REFINER's actor_input)
  z  `{norm} Moral action: {moral_action}`     (REFINER's actor_output `{norm} <|M_ACT|> {moral_action}`, with
     format.M_ACT as the separator: `<|M_ACT|>` does not survive T5's or MiniLM's tokenizer; docs/deviations.md)
The generator writes both; the critic judges the norm (2.1, 2.4), the action is carried along. Generated z is
read through format.canonical, which also reads the old marker in any decoded spelling.

Sources (load_examples): REFINER's `actor_{dev,test}.json` ({id, actor_input, actor_output}), its critic prep
files `critic_{dev,test}_prep.json` (the story plus anti_norm, other_norms (paraphrases), other_anti_norms,
fake_norms with fake_norm_sentiments, norm_action, norm_sentiment), Moral Stories' own jsonl ({ID, norm,
situation, intention, moral_action, immoral_action, ...}), or the Hub: `hub:<split>` loads demelin/moral_stories,
config `gen-norm$actions+context+consequences-norm_distance` (10k / 1k / 1k, the paper's split) from its
parquet export (the repo's loading script no longer runs). Only the prep files carry the critic fields.

Oracle critic on the norm n of a generated z (2.4, `prepare_moral_stories_for_critic.py`):
  n is the gold norm or one of its paraphrases (other_norms)             -> NO_HINT
  n is the anti-norm or one of other_anti_norms                          -> "contradiction"
  n is fake norm i                                                        -> the hint: norm_action (the norm if
      empty), lower-cased; "not " added or removed when norm_sentiment x fake_norm_sentiments[i] < 0
  any other n: its judgment polarity (negative markers such as "shouldn't", "wrong", "rude" in the judgment)
      and its action (the norm minus the judgment) against the gold's: the same action (content-word F1 >=
      ALIGNED) with the same polarity -> NO_HINT, with the opposite polarity -> "contradiction"; a different
      action (semantic misalignment) -> the hint, negated as for fake norms.
Fixes: every fake norm is used (the reference's `zip(fake_norms[:-1], ...)` dropped the last), and the
candidate's first letter is upper-cased without lower-casing the rest (the reference's str.capitalize()).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterator
from pathlib import Path

from common.tasks.records import load_records
from common.tasks.refiner.format import M_ACT, NO_HINT, canonical

HUB_ID, HUB_CONFIG = "demelin/moral_stories", "gen-norm$actions+context+consequences-norm_distance"
REFINER_M_ACT = "<|M_ACT|>"  # the separator in REFINER's actor files
CONTRADICTION = "contradiction"
PERTURBATIONS = ("paraphrase", "contradiction", "fake_norm")
ALIGNED = 0.5
MARKERS = ("<|SIT|>", "<|INT|>", "<|I_ACT|>", "<|NRM|>")
NEGATIVE = re.compile(
    r"n't|\b(?:not|never|no|bad|wrong|rude|mean|unusual|illegal|inappropriate|unacceptable|"
    r"annoying|selfish|irresponsible|dangerous|disrespectful|hurtful|cruel|unkind|frowned)\b"
)
JUDGMENT = re.compile(
    r"^(?:(?:you|one|people|we)\s+(?:should|must|ought to|need to|have to|shouldn't|mustn't)"
    r"(?:\s+(?:not|always|never))?|(?:it is|it's|its)\s+(?:not\s+)?[a-z]+(?:\s+(?:to|that|if|when))?"
    r"|(?:should|shouldn't|must|good|bad|wrong|rude|expected))\s+"
)
# `... is bad.`, `... is not okay.`, `... are very rude`: a copula, an optional negation or intensifier, one word
TRAILING_JUDGMENT = re.compile(r"\b(?:is|are|isn't|aren't)\s+(?:not\s+)?(?:(?:very|really|so)\s+)?[a-z]+[.!]?$")
STOPWORDS = frozenset("a an the to of and or in on at for with your you their them his her it its is be".split())
# the judgment prefixes of preprocess_moral_stories_for_critic.py (2.4), used to invert a norm
GOOD = (
    "it is good to",
    "it's good to",
    "it is right to",
    "it is usual to",
    "it is proper to",
    "you should",
    "you must",
    "it is important to",
)
BAD = (
    "it is bad to",
    "it is unusual to",
    "you shouldn't",
    "you should not",
    "you mustn't",
    "you must not",
    "it is wrong to",
    "it is rude to",
)
# the same prefixes in the reference's groups (its GOOD_NORM_PREFIXES / BAD_NORM_PREFIXES): the variants of one
# judgment, of which a paraphrase uses one at random. Every "it is X to" group also has "it's X to".
GOOD_GROUPS = (
    ("it is good to",),
    ("it is right to",),
    ("it is usual to",),
    ("it is proper to",),
    ("you should", "you must"),
    ("it is important to",),
)
BAD_GROUPS = (
    ("it is bad to",),
    ("it is unusual to",),
    ("you shouldn't", "you should not", "you mustn't", "you must not"),
    ("it is wrong to",),
    ("it is rude to",),
)


def prefix_variants(group: tuple[str, ...]) -> tuple[str, ...]:
    """("it is good to",) -> ("it is good to", "it's good to"), the reference's variant lists."""
    return tuple(v for p in group for v in ((p, p.replace("it is", "it's")) if p.startswith("it is") else (p,)))


# ----------------------------------------------------------------------------- text


def norm_of(z: str) -> str:
    return canonical(z).split(M_ACT, 1)[0].strip()


def action_of(z: str) -> str:
    text = canonical(z)
    return text.split(M_ACT, 1)[1].strip() if M_ACT in text else ""


def _key(text: str) -> str:
    return canonical(text.replace("’", "'")).lower().strip(" .!")


def _cap(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:]


def tokens(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens (rouge_score's tokenisation)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def split_judgment(norm: str) -> tuple[str, str]:
    """("you shouldn't", "lie to your friends.") from "You shouldn't lie to your friends."."""
    text = " ".join(norm.lower().replace("’", "'").split())
    m = JUDGMENT.match(text)
    return (m.group(0).strip(), text[m.end() :]) if m else ("", text)


def polarity(norm: str) -> int:
    """-1 when the norm's judgment is negative. The judgment is the leading prefix (`You shouldn't ...`), else
    a trailing one (`Lying to your parents is bad.`), else the whole sentence (`Never lie.`)."""
    judgment, action = split_judgment(norm)
    if not judgment:
        m = TRAILING_JUDGMENT.search(action)
        judgment = m.group(0) if m else action
    return -1 if NEGATIVE.search(judgment) else 1


def _f1(a: list[str], b: list[str]) -> float:
    common = sum(min(a.count(t), b.count(t)) for t in set(a))
    return 0.0 if not common else 2 * common / (len(a) + len(b))


def _content(text: str) -> list[str]:
    return [t for t in tokens(text) if t not in STOPWORDS]


# ----------------------------------------------------------------------------- loading


def _example(id_: str, situation: str, intention: str, immoral: str, norm: str, moral: str, prep: dict) -> dict:
    for name, value in (
        ("situation", situation),
        ("intention", intention),
        ("immoral_action", immoral),
        ("norm", norm),
        ("moral_action", moral),
    ):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"empty or missing {name}")
    sentiment = prep["norm_sentiment"] if prep.get("norm_sentiment") is not None else polarity(norm)
    fakes = prep.get("fake_norms") or []
    signs = prep.get("fake_norm_sentiments") or []
    if len(signs) != len(fakes):
        raise ValueError(f"{len(fakes)} fake_norms but {len(signs)} fake_norm_sentiments")
    return {
        "id": id_,
        "x": f"<|SIT|> {situation} <|INT|> {intention} <|I_ACT|> {immoral} <|NRM|>",
        "z": f"{norm} {M_ACT} {moral}",
        "norm": norm,
        "moral_action": moral,
        "norm_action": prep.get("norm_action") or "",
        "norm_sentiment": sentiment,
        "anti_norms": [a for a in [prep.get("anti_norm")] + list(prep.get("other_anti_norms") or []) if a],
        "paraphrases": list(prep.get("other_norms") or []),
        "fake_norms": list(zip(fakes, signs)),
    }


def story_fields(r: dict) -> dict:
    """{id, situation, intention, immoral_action, norm, moral_action} of a REFINER actor record, a critic prep
    record or a Moral Stories row ({ID, ...}); the values are not checked here (see _example)."""
    if "actor_input" in r:
        parts = re.split("|".join(re.escape(m) for m in MARKERS), r["actor_input"])
        if len(parts) != 5 or REFINER_M_ACT not in r.get("actor_output", ""):
            raise ValueError(
                "actor_input is not `<|SIT|> .. <|INT|> .. <|I_ACT|> .. <|NRM|>` or actor_output lacks <|M_ACT|>"
            )
        norm, moral = (s.strip() for s in r["actor_output"].split(REFINER_M_ACT, 1))
        situation, intention, immoral = (p.strip() for p in parts[1:4])
        return {
            "id": r["id"],
            "situation": situation,
            "intention": intention,
            "immoral_action": immoral,
            "norm": norm,
            "moral_action": moral,
        }
    fields = ("situation", "intention", "immoral_action", "norm", "moral_action")
    missing = [f for f in fields if f not in r] + ([] if r.get("id") or r.get("ID") else ["id (or ID)"])
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    return {"id": r.get("id") or r["ID"], **{f: r[f] for f in fields}}


def _from_actor(r: dict) -> dict:
    f = story_fields(r)
    return _example(f["id"], f["situation"], f["intention"], f["immoral_action"], f["norm"], f["moral_action"], {})


def _build(r: dict, index: int) -> dict:
    if "actor_input" in r:
        return _from_actor(r)
    return _example(
        r.get("id") or r["ID"],
        r["situation"],
        r["intention"],
        r["immoral_action"],
        r["norm"],
        r["moral_action"],
        r if "fake_norms" in r else {},
    )


def load_examples(path: str | Path, on_bad_record: str = "error", stats=None) -> list[dict]:
    """A REFINER actor or critic-prep file, a Moral Stories jsonl, or `hub:<train|validation|test>`."""
    if str(path).startswith("hub:"):
        from datasets import load_dataset

        split = str(path)[4:]
        rows = load_dataset(HUB_ID, HUB_CONFIG, split=split, revision="refs/convert/parquet")
        return [_build(dict(r), i) for i, r in enumerate(rows)]
    return load_records(path, _build, (), on_bad_record, stats)


# ----------------------------------------------------------------------------- oracle critic


def hint(example: dict, negate: bool) -> str:
    """2.4: the gold norm's action phrase (norm_action, else the norm), lower-cased, negated on request."""
    text = (example["norm_action"] or example["norm"]).strip().lower()
    if negate:
        text = text[len("not ") :] if text.startswith("not ") else "not " + text
    return text


def critique(example: dict, z: str) -> str:
    """The oracle's feedback on the norm of a generated z (module docstring)."""
    norm = _key(norm_of(z))
    if norm in {_key(example["norm"])} | {_key(p) for p in example["paraphrases"]}:
        return NO_HINT
    if norm in {_key(a) for a in example["anti_norms"]}:
        return CONTRADICTION
    gold_sign = 1 if example["norm_sentiment"] > 0 else -1 if example["norm_sentiment"] < 0 else 0
    for fake, sign in example["fake_norms"]:
        if norm == _key(fake):
            return hint(example, gold_sign * sign < 0)
    sign = polarity(norm)
    aligned = _f1(_content(split_judgment(norm)[1]), _content(split_judgment(example["norm"])[1])) >= ALIGNED
    if aligned:
        return NO_HINT if gold_sign * sign >= 0 else CONTRADICTION
    return hint(example, gold_sign * sign < 0)


def invert(norm: str) -> str | None:
    """A contradiction by deontic inversion (2.4): a GOOD judgment prefix replaced by a BAD one and back."""
    low = norm.lower().replace("’", "'")
    for same, other in ((BAD, GOOD), (GOOD, BAD)):  # BAD first: "you should not" before "you should"
        for i, prefix in sorted(enumerate(same), key=lambda p: -len(p[1])):
            for variant in {prefix, prefix.replace("it is", "it's")}:
                if low.startswith(variant + " "):
                    return _cap(other[i] + norm[len(variant) :])
    return None


# ----------------------------------------------------------------------------- critic data (2.4)


def perturbations(example: dict, rng: random.Random) -> Iterator[tuple[str, str]]:
    """Every candidate norm of the prep file, each once, in the gold context (2.4): paraphrases (-> NO_HINT),
    anti-norms (-> contradiction), fake norms (-> hint). A candidate that equals the gold, or also belongs to
    a class tried before it, is left out, so the kind always names its feedback. Without prep fields (actor
    files, the Hub) the only perturbation is the inverted judgment. `rng` is unused: all candidates are kept."""
    seen = {_key(example["norm"])}
    moral = example["moral_action"]
    anti = example["anti_norms"] or [
        n for n in [invert(example["norm"])] if n and critique(example, f"{n} {M_ACT}") == CONTRADICTION
    ]
    for kind, candidates in (
        ("paraphrase", example["paraphrases"]),
        ("contradiction", anti),
        ("fake_norm", [f for f, _ in example["fake_norms"]]),
    ):
        taken = set()
        for c in candidates:
            if _key(c) not in seen and _key(c) not in taken:
                taken.add(_key(c))
                yield kind, f"{_cap(c)} {M_ACT} {moral}"
        seen |= taken


# ----------------------------------------------------------------------------- metrics


@functools.cache
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 (Lin 2004) from the `rouge-score` package (Google's reimplementation of ROUGE-1.5.5):
    its fmeasure, beta = 1, no stemming; its tokeniser is `tokens` (lower-cased alphanumeric runs)."""
    return _rouge_scorer().score(reference, prediction)["rougeL"].fmeasure


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style bag-of-tokens F1 on `tokens`."""
    return _f1(tokens(prediction), tokens(reference))


HEADLINE = "norm_rouge_l"  # a proxy: the paper's measure is human relevance (8.4)


def metrics(examples: list[dict], predictions: list[str]) -> dict[str, float]:
    """Automatic overlap scores in percent: ROUGE-L F1 and token F1 of the norm and of the moral action
    (the text before and after M_ACT), and norm_no_hint, the share the oracle critic accepts. The paper
    judged relevance with human raters (refiner.md 8.4: 100 test stories, 3 judges, 1-5 Likert), having
    rejected word-overlap metrics; these are a cheap proxy, not its measure."""
    if len(examples) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    n = len(examples)
    sums = {
        "norm_rouge_l": 0.0,
        "norm_token_f1": 0.0,
        "action_rouge_l": 0.0,
        "action_token_f1": 0.0,
        "norm_no_hint": 0.0,
    }
    for e, p in zip(examples, predictions):
        for part, have, want in (("norm", norm_of(p), e["norm"]), ("action", action_of(p), e["moral_action"])):
            sums[f"{part}_rouge_l"] += rouge_l(have, want)
            sums[f"{part}_token_f1"] += token_f1(have, want)
        sums["norm_no_hint"] += critique(e, p) == NO_HINT
    return {"n": n, **{k: round(100.0 * v / n, 2) if n else 0.0 for k, v in sums.items()}}

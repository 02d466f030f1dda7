"""RATIONALYST rationale logic shared by the stages: parsing rewrites, the scoring frame, the score.

Spec: ../shared/reference/rationalyst.md sections 4.1 (parse) and 4.2 (score).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from common.llm.base import Branches

BOT, EOT = "<BOT>", "<EOT>"
SPAN_RE = re.compile(r"\s*<BOT>.*?<EOT>", re.DOTALL)
WHITESPACE_RE = re.compile(r"\s+")
BOT_SPLIT_RE = re.compile(r" ?<BOT>")
DISCOUNT = 0.9  # rationalyst.md 4.2: S = sum_i 0.9^i * logp(following token i), i from 0


# ----------------------------------------------------------------------------- parsing (4.1)


def remove_rationales(rewrite: str) -> str:
    """The rewrite with every <BOT>...<EOT> span removed (and stray markers dropped)."""
    return SPAN_RE.sub("", rewrite).replace(BOT, "").replace(EOT, "")


def faithfulness(original: str, rewrite: str) -> float:
    """1 - editdistance(original, rewrite without rationales) / len(original), whitespace ignored
    (the non-debug reference variant strips spaces and newlines before comparing; 4.1 step 1)."""
    from rapidfuzz.distance import Levenshtein

    a = WHITESPACE_RE.sub("", original)
    b = WHITESPACE_RE.sub("", remove_rationales(rewrite))
    if not a:
        return 0.0
    return 1.0 - Levenshtein.distance(a, b) / len(a)


@dataclass
class Triple:
    index: int  # which rationale in the document (1-based, as in the spec's split)
    preceding: str  # all original text before the rationale, earlier rationales removed
    rationale: str
    following: str  # only the next segment, up to the next <BOT> (4.1 step 2)
    left_steps: int  # segments remaining after this one


@dataclass
class ParseResult:
    triples: list[Triple]
    malformed: int = 0  # <BOT> without <EOT>: skipped
    empty: int = 0  # empty preceding, rationale or following: skipped (the reference scores them False)


def split_triples(rewrite: str) -> ParseResult:
    pieces = BOT_SPLIT_RE.split(rewrite)  # the reference splits on " <BOT>": no double space left behind
    result = ParseResult([])
    preceding = pieces[0].replace(EOT, "")
    for i, piece in enumerate(pieces[1:], 1):
        if EOT not in piece:
            result.malformed += 1
            preceding += piece  # keep the text flowing; the unclosed rationale is lost
            continue
        rationale, following = piece.split(EOT, 1)
        following = following.replace(EOT, "")
        triple = Triple(i, preceding.strip(), rationale.strip(), following.strip(), len(pieces) - 1 - i)
        if triple.preceding and triple.rationale and triple.following:
            result.triples.append(triple)
        else:
            result.empty += 1
        preceding += following
    return result


# ----------------------------------------------------------------------------- scoring (4.2)

# The scorer's chat frame (4.2): system, user = preceding text (+ rationale), assistant = following.
# In this project's words; `bot_eot` is the debug variant's layout (the spec recommends that variant),
# `plain` the non-debug one (preceding + ". " + rationale).
SYSTEM_PLAIN = "Continue the text: given the preceding text, write the text that comes next."
SYSTEM_BOT_EOT = (
    SYSTEM_PLAIN + " Text between <BOT> and <EOT> is a rationale about what comes next; it may or may not be helpful."
)
_SENTINEL = "\ue000RATIONALE\ue000"


@dataclass
class Frame:
    prefix: str  # rendered chat up to the preceding text's last word (shared by both variants)
    with_middle: str  # that word, the rationale and the rest of the frame up to the assistant's text
    without_middle: str  # that word and the rest of the frame


LAST_WORD_RE = re.compile(r"\s+\S*\Z")


def scoring_frame(render_chat, preceding: str, rationale: str, fmt: str = "bot_eot") -> Frame:
    """Split the rendered frame before the preceding text's last word, so both variants share the prefix.
    Not at the very end of the preceding text: what is inserted there can merge with it into one token
    (Llama-3's and SmolLM2's tokenizers read "April." + ". r" as "April", "..", " r"), and the backends
    tokenise prefix and middle on their own. A word starts at a whitespace run, which these tokenizers
    never merge with what precedes it."""
    system = SYSTEM_BOT_EOT if fmt == "bot_eot" else SYSTEM_PLAIN
    text = render_chat([{"role": "system", "content": system}, {"role": "user", "content": preceding + _SENTINEL}])
    prefix, tail = text.split(_SENTINEL)
    last = LAST_WORD_RE.search(prefix)
    cut = last.start() if last else len(prefix)
    prefix, word = prefix[:cut], prefix[cut:]
    inserted = f" {BOT}{rationale}{EOT}" if fmt == "bot_eot" else f". {rationale}"
    return Frame(prefix, word + inserted + tail, word + tail)


def discounted_score(logprobs: list[float], discount: float = DISCOUNT) -> float:
    return float(sum(lp * discount**i for i, lp in enumerate(logprobs)))


def branches_for(render_chat, triples: list[dict], fmt: str = "bot_eot") -> list[Branches]:
    """One request per triple: (with rationale, without rationale), both scoring `following`."""
    out = []
    for t in triples:
        f = scoring_frame(render_chat, t["preceding"], t["rationale"], fmt)
        out.append(Branches(f.prefix, [(f.with_middle, t["following"]), (f.without_middle, t["following"])]))
    return out


# ----------------------------------------------------------------------------- released triples (rationalyst.md 3.4)

# RATIONALYST's released rationales (Hub `Dongwei/reasoning_world_model`) are rows {preceeding (sic),
# rationale, following} with no id; this project's are {id, preceding, rationale, following, ...}.
TRIPLE_FIELDS = ("preceding", "rationale", "following")


def content_id(preceding: str, rationale: str, following: str) -> str:
    """A stable id from a triple's text: the same row gets the same id in every run and every file."""
    digest = hashlib.sha256("\x00".join((preceding, rationale, following)).encode("utf-8")).hexdigest()
    return f"triple-{digest[:16]}"


def triples(rows: Iterable[dict], counts: dict[str, int] | None = None) -> Iterator[dict]:
    """Rows in either layout as this project's triples: `preceeding` read as `preceding`, an id derived from
    the content where there is none, exact duplicates (same id) dropped and counted under `duplicates`."""
    counts = counts if counts is not None else {}
    counts.setdefault("duplicates", 0)
    seen: set[str] = set()
    for row in rows:
        rec = dict(row)
        if "preceding" not in rec and "preceeding" in rec:
            rec["preceding"] = rec.pop("preceeding")
        missing = [f for f in TRIPLE_FIELDS if not isinstance(rec.get(f), str)]
        if missing:
            raise ValueError(f"a triple needs text fields {', '.join(TRIPLE_FIELDS)}; missing or not text: "
                             f"{', '.join(missing)}")  # fmt: skip
        rec["id"] = str(rec.get("id") or content_id(rec["preceding"], rec["rationale"], rec["following"]))
        if rec["id"] in seen:
            counts["duplicates"] += 1
            continue
        seen.add(rec["id"])
        yield rec

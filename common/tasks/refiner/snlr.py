"""Synthetic natural language reasoning (sNLR) for REFINER: HELM's SRN scenario, hard (refiner.md 1.2, 2.5).

Data: REFINER's `srn_{train,val,test}.json` (1,000 / 5,000 / 5,000), JSON arrays of {rules (5), fact,
consequents, explanations, implicit_knowledge, or_knowledge, and_knowledge}. There is no Hub copy: HELM
generates the problems (`SRNScenario("hard").get_instances()`, Apache-2.0), and the script that wrote the
explanations is not public, so these files are the source.

  x  HELM's input: the rules one per line, "Fact:", the fact, "The following can be determined about the poppy:"
  z  the inference steps, `#0: poppy is plant #1: poppy is beautiful #2: poppy is strong` (the files' trailing
     space dropped); `#0: The argument is invalid!!` when nothing follows
  y  the consequent, `The poppy is strong` or `Nothing`. In all 11,000 records y is z's last step (with the
     subject's article), so y is read off the generated z (`consequent`).

Oracle critic (2.1, 2.5; the paper's error types, its v1 templates as wording): a generated z is compared
step by step with the gold z, using the example's rules to tell which conclusions are licensed.
  step #k not in the gold, concluding an attribute of a rule that does not fire (e.g. an `and` rule with one
    condition met), or `A or B` where the gold concludes `A and B`  -> "the and/or operator makes inference rule #k invalid."
  any other step #k not in the gold                                   -> "inference rule #k is invalid."
  a gold implicit-knowledge step (type-of / synonym) missing          -> "the implicit knowledge is missing."
  any other gold step missing                                         -> "missing link between the fact and the rules."
  the gold is `Nothing` and nothing else was reported                  -> "the argument is invalid."
  same steps in another order (or repeated)                           -> "the inference rules are in the wrong order."
Perturbations for critic data (2.5): drop a linking step (missing link), drop an implicit-knowledge step
(missing implicit knowledge), conclude from an `and` rule that only one condition meets, or turn the gold's
`A and B` conclusion into `A or B` (logically invalid).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

from common.tasks.records import load_records
from common.tasks.refiner.format import NO_HINT, canonical

INVALID = "The argument is invalid!!"
PERTURBATIONS = ("missing_link", "missing_implicit_knowledge", "logically_invalid")
MISSING_LINK = "missing link between the fact and the rules."
MISSING_KNOWLEDGE = "the implicit knowledge is missing."
WRONG_ORDER = "the inference rules are in the wrong order."
NOTHING_FOLLOWS = "the argument is invalid."
STEP_SPLIT = re.compile(r"#\d+\s*:")
RULE_RE = re.compile(r"If (?:an? )?(.+?) is (.+?), then (?:the )?(.+?) is (.+?)\.?$")
FACT_RE = re.compile(r"(?:The )?(.+?) is (.+?)\.?$")
ATOM_RE = re.compile(r"(.+?) is (.+)")

# HELM's attribute groups (synthetic_reasoning_natural_scenario.get_vocab): the fact may use any word of a group
SYNONYMS = {
    "young": ["young"],
    "soft": ["soft"],
    "sad": ["sad"],
    "scary": ["scary"],
    "cold": ["cold", "chill", "cool"],
    "hot": ["hot", "warm"],
    "smart": ["smart", "clever", "wise", "intelligent"],
    "clean": ["clean", "tidy"],
    "small": ["small", "little", "tiny"],
    "big": ["big", "enormous", "giant", "huge"],
    "good": ["good", "kind", "nice"],
    "beautiful": ["beautiful", "pretty"],
    "red": ["red", "crimson"],
    "blue": ["blue", "cobalt"],
    "green": ["green", "viridian"],
    "purple": ["purple", "violet"],
    "boring": ["boring", "dull"],
    "old": ["old", "ancient", "antique"],
    "strong": ["strong", "powerful", "muscular"],
    "weak": ["weak", "frail", "fragile"],
    "fast": ["fast", "quick"],
    "slow": ["slow", "sluggish"],
    "bad": ["bad", "evil", "wicked", "mean"],
    "happy": ["happy", "elated", "glad", "cheerful"],
    "round": ["round", "circular", "spherical"],
}
GENERIC = {word: group for group, words in SYNONYMS.items() for word in words}


# ----------------------------------------------------------------------------- z


def steps(z: str) -> list[str]:
    """The steps of z read through format.canonical (a WordPiece decode's `# 0 :` is `#0:`), without their
    `#k:` labels."""
    return [s.strip().rstrip(".") for s in STEP_SPLIT.split(canonical(z)) if s.strip()]


def render(step_list: list[str]) -> str:
    return " ".join(f"#{k}: {s}" for k, s in enumerate(step_list))


def _key(step: str) -> str:
    return step.lower().rstrip("!. ")


def _atom(step: str) -> tuple[str, list[str], str | None]:
    """`rose is boring and big` -> ("rose", ["boring", "big"], "and")."""
    m = ATOM_RE.fullmatch(step.lower().rstrip("!. "))
    if not m:
        return "", [], None
    conj = "and" if " and " in m.group(2) else "or" if " or " in m.group(2) else None
    return m.group(1), [a.strip() for a in re.split(r" and | or ", m.group(2))], conj


def consequent(z: str, example: dict) -> str:
    """y read off z: the last step with the subject's article (`The poppy is strong`, also from a step that
    writes `the poppy is strong`), `Nothing` when z concludes that the argument is invalid, "" for an empty z
    (no answer, not a correct `Nothing`)."""
    st = steps(z)
    if not st:
        return ""
    if _key(st[-1]) == _key(INVALID):
        return "Nothing"
    article = "The " if example["fact"].startswith("The ") else ""
    return article + re.sub(r"^the ", "", st[-1], flags=re.IGNORECASE)


# ----------------------------------------------------------------------------- loading


def _rule(text: str) -> dict:
    m = RULE_RE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"rule not of the form 'If a X is A [and|or B], then the X is C.': {text!r}")
    conj = "and" if " and " in m.group(2) else "or" if " or " in m.group(2) else None
    return {
        "subject": m.group(1),
        "conditions": re.split(r" and | or ", m.group(2)),
        "conjunction": conj,
        "consequent": m.group(4),
    }


def _build(r: dict, index: int, stem: str) -> dict:
    rules = [_rule(t) for t in r["rules"]]
    fact = FACT_RE.fullmatch(r["fact"].strip())
    if not fact:
        raise ValueError(f"fact not of the form 'The X is A and B.': {r['fact']!r}")
    subject = fact.group(1)
    z = render(steps(r["explanations"]))
    if not z:
        raise ValueError("empty explanations")
    about = f"the {subject}" if r["fact"].startswith("The ") else subject
    x = "\n".join(r["rules"]) + f"\nFact:\n{r['fact']}\nThe following can be determined about {about}:"
    knowledge = [k.strip() for k in r.get("implicit_knowledge", []) if not k.strip().startswith("#")]
    return {
        "id": f"{stem}-{index}",
        "x": x,
        "z": z,
        "y": r["consequents"],
        "rules": r["rules"],
        "fact": r["fact"],
        "subject": subject,
        "parsed_rules": rules,
        "implicit_knowledge": knowledge,
        "fact_attributes": [GENERIC.get(a, a) for a in re.split(r" and | or ", fact.group(2))],
    }


def load_examples(path: str | Path, on_bad_record: str = "error", stats=None) -> list[dict]:
    """REFINER's srn_*.json (see the module docstring; no Hub copy exists, HELM generates sNLR)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; sNLR has no Hub copy: use REFINER's data/srn/srn_*.json "
            "or generate it with HELM's SRNScenario('hard') (refiner.md 1.2)"
        )
    return load_records(
        path,
        lambda r, i: _build(r, i, path.stem),
        ("rules", "fact", "consequents", "explanations", "implicit_knowledge"),
        on_bad_record,
        stats,
    )


# ----------------------------------------------------------------------------- oracle critic


def _invalid_message(example: dict, step: str, k: int, gold_conclusion: tuple) -> str | None:
    subject, attrs, conj = _atom(step)
    _, gold_attrs, gold_conj = gold_conclusion
    if subject == example["subject"].lower() and attrs and set(attrs) <= set(gold_attrs):
        if conj == "or" and gold_conj == "and":
            return f"the or operator makes inference rule #{k} invalid."
        return None  # part of the gold conclusion: the missing gold step is reported
    unlicensed = [a for a in attrs if a not in gold_attrs] if subject == example["subject"].lower() else []
    for rule in example["parsed_rules"]:
        if rule["consequent"] in unlicensed and rule["conjunction"]:
            return f"the {rule['conjunction']} operator makes inference rule #{k} invalid."
    return f"inference rule #{k} is invalid."


def critique(example: dict, z: str) -> str:
    """The oracle's feedback on a generated z (module docstring); NO_HINT when z equals the gold."""
    gold, have = steps(example["z"]), steps(z)
    if [_key(s) for s in have] == [_key(s) for s in gold]:
        return NO_HINT
    gold_keys, have_keys = {_key(s) for s in gold}, {_key(s) for s in have}
    nothing = gold_keys == {_key(INVALID)}
    conclusion = ("", [], None) if nothing else _atom(gold[-1])
    messages, covered = [], {_key(INVALID)}
    for k, step in enumerate(have):
        if _key(step) not in gold_keys and _key(step) != _key(INVALID):
            message = _invalid_message(example, step, k, conclusion)
            if message:
                messages.append(message)
            subject, attrs, _ = _atom(step)
            if message and not nothing and subject == conclusion[0] and set(conclusion[1]) <= set(attrs):
                covered.add(_key(gold[-1]))  # the gold conclusion is in this step (`or`, or more): one error
    knowledge = {_key(s) for s in example["implicit_knowledge"]}
    missing = [s for s in gold_keys - have_keys if s not in covered]
    if any(s not in knowledge for s in missing):
        messages.append(MISSING_LINK)
    if any(s in knowledge for s in missing):
        messages.append(MISSING_KNOWLEDGE)
    if not messages:
        messages.append(NOTHING_FOLLOWS if nothing and _key(INVALID) not in have_keys else WRONG_ORDER)
    return " ".join(messages)


# ----------------------------------------------------------------------------- critic data (2.5)


def perturbations(example: dict, rng: random.Random) -> Iterator[tuple[str, str]]:
    """(kind, wrong z) for each kind that applies to the example, one of each."""
    gold = steps(example["z"])
    knowledge = {_key(s) for s in example["implicit_knowledge"]}
    nothing = [_key(s) for s in gold] == [_key(INVALID)]
    links = [k for k, s in enumerate(gold[:-1]) if _key(s) not in knowledge]
    if links and not nothing:
        drop = rng.choice(links)
        yield "missing_link", render(gold[:drop] + gold[drop + 1 :])
    known = [k for k, s in enumerate(gold) if _key(s) in knowledge]
    if known and not nothing:
        drop = rng.choice(known)
        yield "missing_implicit_knowledge", render(gold[:drop] + gold[drop + 1 :])
    invalid = []
    conclusion = [] if nothing else _atom(gold[-1])[1]
    for rule in example["parsed_rules"]:  # an `and` rule read as `or`: one condition met is not enough
        met = [c for c in rule["conditions"] if c in example["fact_attributes"]]
        if (
            rule["conjunction"] == "and"
            and met
            and len(met) < len(rule["conditions"])
            and rule["consequent"] not in conclusion
            and rule["consequent"] not in example["fact_attributes"]
        ):
            invalid.append((0 if nothing else len(gold), f"{example['subject']} is {rule['consequent']}"))
    if not nothing and " and " in gold[-1]:
        invalid.append((len(gold) - 1, gold[-1].replace(" and ", " or ")))
    if invalid:
        k, step = rng.choice(invalid)
        base = [] if nothing else gold
        yield "logically_invalid", render(base[:k] + [step] + base[k + 1 :])


# ----------------------------------------------------------------------------- metrics (8.3)


def _conclusion(y: str) -> tuple[str, frozenset, str | None] | None:
    """(subject, attributes, and/or) of a consequent: `A or B` is not `A and B` (the error the critic flags);
    None when y is empty or not `X is A`."""
    if y.strip().rstrip(".").lower() == "nothing":
        return "nothing", frozenset(), None
    subject, attrs, conj = _atom(re.sub(r"^the ", "", y.strip(), flags=re.I))
    return (subject, frozenset(attrs), conj) if subject and attrs else None


HEADLINE = "ir_exact_match"  # refiner.md 8.3: IR exact match


def metrics(examples: list[dict], predictions: list[str]) -> dict[str, float]:
    """In percent: ir_exact_match, the generated z's steps equal the gold's (read through format.canonical; case
    and the `#k:` labels normalised); consequent_accuracy, y read off z (`consequent`) names the gold's subject
    and attributes (in any order) with the gold's conjunction, or is `Nothing` when the gold is."""
    if len(examples) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    n = len(examples)
    ir = sum([_key(s) for s in steps(p)] == [_key(s) for s in steps(e["z"])] for e, p in zip(examples, predictions))
    con = sum(
        (have := _conclusion(consequent(p, e))) is not None and have == _conclusion(e["y"])
        for e, p in zip(examples, predictions)
    )
    return {
        "n": n,
        "ir_exact_match": round(100.0 * ir / n, 2) if n else 0.0,
        "consequent_accuracy": round(100.0 * con / n, 2) if n else 0.0,
    }

"""Math word problems for REFINER (refiner.md 1.1): linear formulas, a safe evaluator, the oracle critic.

z is a linear formula, `#0: multiply ( number1, number2 ) | #1: subtract ( number0, #0 ) | EOS`:
steps `#k: OP ( A, B )` with OP in add/subtract/multiply/divide and operands `numberN` (the
problem's N-th number), `#j` (an earlier step) or a literal constant. A one-quantity answer is
written `number0 EOS`. Formulas are parsed by a small grammar and computed directly; nothing is
ever passed to `eval`.

Data quirks normalised on load (refiner.md 1.1, 9.1.12): `substract` -> `subtract`, `<END>` -> `EOS`,
spacing; SVAMP/MAWPS CSVs give prefix equations (`- number0 * number1 number2`), converted here
(the reference converter garbles about 17% of the val file).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common.tasks.records import load_records
from common.tasks.refiner.format import NO_HINT, canonical

OPS = ("add", "subtract", "multiply", "divide")
PREFIX_OPS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
# Indices and constants are bounded: a model may write any number of digits, and int() refuses more than 4,300
# (ValueError, not FormulaError); no problem has 10,000 numbers or steps.
STEP_RE = re.compile(r"#(\d{1,4}) ?: ?([a-z]+) ?\( ?([^,()\s]+) ?, ?([^,()\s]+) ?\)")
OPERAND_RE = re.compile(r"number\d{1,4}|#\d{1,4}|-?\d{1,15}(?:\.\d{1,15})?")


class FormulaError(ValueError):
    pass


@dataclass(frozen=True)
class Step:
    op: str
    a: str
    b: str


def normalize(formula: str) -> str:
    """Canonical spelling and spacing: `#0: subtract ( number0, number1 ) | EOS`. Reads decoded text through
    format.canonical (what an uncased WordPiece tokenizer does to a formula: `# 0 : add ( number0, 100. 0 )
    | eos`). Linear time: whitespace is collapsed before any pattern with optional spaces runs."""
    text = canonical(formula.lower().replace("substract", "subtract").replace("<end>", "EOS").replace("'", ""))
    text = re.sub(r"\beos\b", "EOS", text)
    text = re.sub(r"(\d) ?\. ?(\d)", r"\1.\2", text)
    text = re.sub(r" ?, ?", ", ", text)
    return " ".join(text.split())


def parse(formula: str) -> list[Step] | str:
    """Steps of a formula, or the single operand of a one-quantity formula (`number0 EOS`)."""
    text = normalize(formula)
    if text.endswith("EOS"):
        text = text[: -len("EOS")].strip()
    parts = [p.strip() for p in text.split("|") if p.strip()]
    if len(parts) == 1 and OPERAND_RE.fullmatch(parts[0]):
        return parts[0]
    if not parts:
        raise FormulaError(f"empty formula: {formula!r}")
    steps = []
    for k, part in enumerate(parts):
        m = STEP_RE.fullmatch(part)
        if not m:
            raise FormulaError(f"step {k} is not `#k: op ( a, b )`: {part!r}")
        index, op, a, b = int(m.group(1)), m.group(2), m.group(3), m.group(4)
        if index != k:
            raise FormulaError(f"step {k} is numbered #{index}")
        if op not in OPS:
            raise FormulaError(f"unknown operator {op!r} in step {k}")
        for operand in (a, b):
            if not OPERAND_RE.fullmatch(operand):
                raise FormulaError(f"bad operand {operand!r} in step {k}")
        steps.append(Step(op, a, b))
    return steps


def _value(operand: str, numbers: list[float], results: list[float]) -> float:
    if operand.startswith("number"):
        n = int(operand[len("number") :])
        if n >= len(numbers):
            raise FormulaError(f"{operand} but the problem has {len(numbers)} numbers")
        return numbers[n]
    if operand.startswith("#"):
        j = int(operand[1:])
        if j >= len(results):
            raise FormulaError(f"{operand} refers to a step not yet computed")
        return results[j]
    return float(operand)


def apply(op: str, a: float, b: float) -> float:
    if op == "add":
        return a + b
    if op == "subtract":
        return a - b
    if op == "multiply":
        return a * b
    if b == 0:
        raise FormulaError("division by zero")
    return a / b


def execute(formula: str, numbers: list[float]) -> float:
    """The answer of a linear formula for the problem's numbers (the last step's value)."""
    parsed = parse(formula)
    if isinstance(parsed, str):
        return _value(parsed, numbers, [])
    results: list[float] = []
    for step in parsed:
        results.append(apply(step.op, _value(step.a, numbers, results), _value(step.b, numbers, results)))
    return results[-1]


def answers_match(prediction: float | None, gold: float, rel: float = 1e-4) -> bool:
    return prediction is not None and math.isclose(prediction, gold, rel_tol=rel, abs_tol=1e-6)


def prefix_to_linear(prefix: str) -> str:
    """`- number0 * number1 number2` -> `#0: multiply ( number1, number2 ) | #1: subtract ( number0, #0 ) | EOS`.
    Steps are numbered in post-order (left operand first), with an explicit stack: any depth, no recursion."""
    tokens = prefix.split()
    steps: list[str] = []
    pending: list[tuple[str, list[str]]] = []  # operators still waiting for operands
    root = None
    for tok in tokens:
        if root is not None:
            raise FormulaError(f"extra tokens after the prefix equation: {prefix!r}")
        if tok in PREFIX_OPS:
            pending.append((tok, []))
            continue
        if not OPERAND_RE.fullmatch(tok):
            raise FormulaError(f"bad token {tok!r} in prefix equation {prefix!r}")
        value = tok
        while pending:
            op, operands = pending[-1]
            operands.append(value)
            if len(operands) < 2:
                break
            pending.pop()
            steps.append(f"#{len(steps)}: {PREFIX_OPS[op]} ( {operands[0]}, {operands[1]} )")
            value = f"#{len(steps) - 1}"
        else:
            root = value
    if root is None:
        raise FormulaError(f"prefix equation ends early: {prefix!r}")
    return " | ".join(steps) + " | EOS" if steps else f"{root} EOS"


# ----------------------------------------------------------------------------- oracle critic (2.3)


COMMUTATIVE = ("add", "multiply")


def oracle_feedback(generated: str, gold: str) -> str:
    """Fine-grained feedback on a generated formula against the gold one (refiner.md 2.3), fixed:
    every step is reported (the reference stopped at #3 and misplaced #3's first operand),
    operands are compared wherever they are (constants too), subtraction is an operator like
    the others, and the operands of a gold add or multiply are unordered, as in the metric
    (equations_match; refiner.md 4's commutative exact match; docs/deviations.md): a formula the
    metric counts as right gets "No hint.", so refinement cannot turn it wrong. Messages: "add an
    operator." / "remove an operator." then, per step k, "the operator in #k is incorrect.", "the
    first number in #k is incorrect.", "the second number in #k is incorrect." (first and second as
    the generated step writes them); "No hint." when correct."""
    gold_steps = _as_steps(parse(gold))
    try:
        gen_steps = _as_steps(parse(generated))
    except FormulaError:
        gen_steps = []  # unreadable output: every gold step is reported
    if gen_steps and _key(gen_steps) == _key(gold_steps):
        return NO_HINT
    messages = []
    if len(gold_steps) > len(gen_steps):
        messages.append("add an operator.")
    elif len(gold_steps) < len(gen_steps):
        messages.append("remove an operator.")
    for k, want in enumerate(gold_steps):
        have = gen_steps[k] if k < len(gen_steps) else None
        if have is None or have.op != want.op:
            messages.append(f"the operator in #{k} is incorrect.")
        first_wrong, second_wrong = _operands_wrong(have, want)
        if first_wrong:
            messages.append(f"the first number in #{k} is incorrect.")
        if second_wrong:
            messages.append(f"the second number in #{k} is incorrect.")
    return " ".join(messages) if messages else NO_HINT


def _operands_wrong(have: Step | None, want: Step) -> tuple[bool, bool]:
    """Which of the generated step's operands are wrong; for a commutative gold step, against the gold's
    operands in whichever order fits better (the written order on a tie)."""
    if have is None:
        return True, True
    straight = (have.a != want.a, have.b != want.b)
    if want.op not in COMMUTATIVE:
        return straight
    swapped = (have.a != want.b, have.b != want.a)
    return swapped if sum(swapped) < sum(straight) else straight


def _key(steps: list[Step]) -> tuple:
    return tuple((s.op, *sorted((s.a, s.b))) if s.op in COMMUTATIVE else (s.op, s.a, s.b) for s in steps)


def _as_steps(parsed: list[Step] | str) -> list[Step]:
    return [Step("", parsed, "")] if isinstance(parsed, str) else parsed


# ----------------------------------------------------------------------------- loading


def _numbers(value) -> list[float]:
    if isinstance(value, list):
        return [float(v) for v in value]
    text = str(value).strip().strip("[]").replace(",", " ")
    return [float(v) for v in text.split()]


def load(path: str | Path, on_bad_record: str = "error", stats=None) -> list[dict]:
    """Problems as {id, question, formula, numbers, answer} from REFINER's critique_*.json or a
    SVAMP/MAWPS CSV (`Question`, `Numbers`, prefix `Equation`, `Answer`). A malformed record errors
    with file and line, or is skipped and counted (`on_bad_record`).

    For REFINER's test file `numbers` is None: its `Numbers` hold only the values the equation
    uses and cannot be indexed by numberN (refiner.md 1.1); use SVAMP's dev CSV for answers."""
    path = Path(path)
    if path.suffix == ".csv":
        return load_records(
            path,
            lambda r, i: _from_csv(r, i, path.stem),
            ("Question", "Numbers", "Equation", "Answer"),
            on_bad_record,
            stats,
        )
    return load_records(
        path, lambda r, i: _from_json(r, i, path.stem), ("Body", "Linear_Formula", "Answer"), on_bad_record, stats
    )


def _from_csv(r: dict, i: int, stem: str) -> dict:
    return {
        "id": f"{stem}-{i}",
        "question": r["Question"].strip(),
        "formula": prefix_to_linear(r["Equation"]),
        "numbers": _numbers(r["Numbers"]),
        "answer": float(r["Answer"]),
    }


def _from_json(r: dict, i: int, stem: str) -> dict:
    body, question = r["Body"].strip(), r.get("Question", "").strip()
    is_test = isinstance(r.get("Numbers"), list) or str(r.get("Numbers", "")).startswith("[")
    # test Bodies hold the question already; elsewhere join with a space (the reference used none)
    text = body if is_test else f"{body} {question}".strip()
    return {
        "id": f"{stem}-{r.get('ID', i)}",
        "question": text,
        "formula": normalize(r["Linear_Formula"]),
        "numbers": None if is_test else _numbers(r["Numbers"]),
        "answer": float(r["Answer"]),
    }


# ----------------------------------------------------------------------------- REFINER task interface
# (common.tasks.refiner): load_examples, critique, metrics


def load_examples(
    path: str | Path, on_bad_record: str = "error", stats=None, svamp_dev: str | Path | None = None
) -> list[dict]:
    """{id, x, z, numbers, answer} for the generator: x the problem text, z the gold formula.
    REFINER's test file has no indexable numbers (refiner.md 1.1); with `svamp_dev` (SVAMP's
    mawps-asdiv-a_svamp_dev.csv) they are filled in from the CSV row with the same problem text."""
    rows = load(path, on_bad_record, stats)
    if svamp_dev and any(r["numbers"] is None for r in rows):
        by_text = {_text_key(r["question"]): r["numbers"] for r in load(svamp_dev)}
        for r in rows:
            if r["numbers"] is None:
                r["numbers"] = by_text.get(_text_key(r["question"]))
    return [
        {"id": r["id"], "x": r["question"], "z": r["formula"], "numbers": r["numbers"], "answer": r["answer"]}
        for r in rows
    ]


def _text_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def critique(example: dict, z: str) -> str:
    """The oracle critic (refiner.md 2.3): feedback on a generated z against the example's gold."""
    return oracle_feedback(z, example["z"])


def equation_key(formula: str):
    """A comparable form of a formula in which the operands of add and multiply are unordered
    (refiner.md 4: commutative exact match; the reference only swapped one pair at a time and
    misread later steps). None when the formula does not parse."""
    try:
        return _key(_as_steps(parse(formula)))
    except FormulaError:
        return None


def equations_match(generated: str, gold: str) -> bool:
    key = equation_key(generated)
    return key is not None and key == equation_key(gold)


def predicted_answer(formula: str, numbers: list[float] | None) -> float | None:
    if numbers is None:
        return None
    try:
        return execute(formula, numbers)
    except FormulaError:
        return None


HEADLINE = "equation_em"  # refiner.md 8.1: equation exact match on SVAMP


def metrics(examples: list[dict], predictions: list[str]) -> dict[str, float]:
    """Equation exact match (commutative) and answer accuracy by safe execution, in percent.
    Answer accuracy covers the examples with numbers (`answer_n` of them)."""
    if len(examples) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    n = len(examples)
    em = sum(equations_match(p, e["z"]) for e, p in zip(examples, predictions))
    parsed = sum(equation_key(p) is not None for p in predictions)
    with_numbers = [(e, p) for e, p in zip(examples, predictions) if e.get("numbers") is not None]
    right = sum(answers_match(predicted_answer(p, e["numbers"]), e["answer"]) for e, p in with_numbers)
    return {
        "n": n,
        "equation_em": round(100.0 * em / n, 2) if n else 0.0,
        "answer_acc": round(100.0 * right / len(with_numbers), 2) if with_numbers else float("nan"),
        "answer_n": len(with_numbers),
        "parsed": round(100.0 * parsed / n, 2) if n else 0.0,
    }


# ----------------------------------------------------------------------------- critic data (2.2)
# With the reference's bugs fixed: subtraction is perturbed too (the reference listed `subtract` but the
# data spells `substract`); feedback is the fixed oracle of 2.3.
#   numbers   one operand replaced by a different numberN of the problem
#   operator  one step's operator replaced by a different one
#   remove    formulas of 2+ steps cut to their first step (as the reference)
#   add       one-step formulas get a step `#1: op ( #0, numberN )`

PERTURBATIONS = ("numbers", "operator", "remove", "add")


def render(steps: list[Step]) -> str:
    return " | ".join(f"#{k}: {s.op} ( {s.a}, {s.b} )" for k, s in enumerate(steps)) + " | EOS"


def perturb(formula: str, n_numbers: int, kind: str, rng: random.Random) -> str | None:
    """One perturbed formula of the given kind, or None when the kind does not apply."""
    parsed = parse(formula)
    if isinstance(parsed, str):
        return None
    steps = list(parsed)
    if kind == "operator":
        k = rng.randrange(len(steps))
        steps[k] = Step(rng.choice([o for o in OPS if o != steps[k].op]), steps[k].a, steps[k].b)
    elif kind == "numbers":
        slots = [(k, side) for k, s in enumerate(steps) for side in ("a", "b") if getattr(s, side).startswith("number")]
        if not slots:
            return None
        k, side = rng.choice(slots)
        old = getattr(steps[k], side)
        choices = [f"number{n}" for n in range(max(n_numbers, 2)) if f"number{n}" != old]
        steps[k] = Step(
            steps[k].op, *((rng.choice(choices), steps[k].b) if side == "a" else (steps[k].a, rng.choice(choices)))
        )
    elif kind == "remove":
        if len(steps) < 2:
            return None
        steps = steps[:1]
    elif kind == "add":
        if len(steps) != 1:
            return None
        steps.append(Step(rng.choice(OPS), "#0", f"number{rng.randrange(max(n_numbers, 1))}"))
    else:
        raise ValueError(f"unknown perturbation {kind!r}")
    return render(steps)


def perturbations(example: dict, rng: random.Random) -> Iterator[tuple[str, str]]:
    """(kind, wrong z) for each kind of PERTURBATIONS that applies, in that order, one each."""
    z = example["z"]
    n_numbers = (
        len(example["numbers"])
        if example.get("numbers")
        else 1 + max((int(t[6:].rstrip(",")) for t in z.split() if t.startswith("number")), default=0)
    )
    for kind in PERTURBATIONS:
        wrong = perturb(z, n_numbers, kind, rng)
        if wrong is not None:
            yield kind, wrong

"""MATH (Hendrycks et al. 2021): competition problems with LaTeX solutions ending in \\boxed{answer}.

Rows: {"problem", "level", "type", "solution"}. From the Hub (`lighteval/MATH`, config `all`, as the
reference; it has been withdrawn from the Hub, so on failure the same rows are read per subject from
`EleutherAI/hendrycks_math`), or locally: the original release's folder (`MATH/test/<subject>/<n>.json`,
one object per file; point at `MATH/`), or a JSONL/JSON/parquet file of the rows.

Answers are compared after a safe normalisation (no eval, no sympy parsing): the last \\boxed{...} (or
\\fbox) of the text, then LaTeX spacing, \\left/\\right, \\dfrac/\\tfrac, units in \\text{ ...}, degrees, $, %,
"x =" prefixes, \\frac12 / \\sqrt3 shorthands and thousands separators are normalised; when both sides are
plain rationals (7, -0.5, \\frac{3}{4}, 3/4) they are compared as numbers.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

from common.tasks import data

HUB, FALLBACK_HUB_ID = ("lighteval/MATH", "all"), "EleutherAI/hendrycks_math"
SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)
DEFAULT_SPLIT, DEFAULT_SHOTS = "test", 5
# 6.2, in this project's words
SYSTEM = (
    "You solve competition mathematics problems one step at a time. Write only the next sentence of the "
    "solution, continuing what has been written so far. When you reach the final answer, write it inside "
    "\\boxed{}."
)


def _hub_rows(split: str) -> list[dict]:
    try:
        return data.hub_rows(*HUB, split)
    except Exception as exc:  # withdrawn from the Hub (rationalyst.md 7.13): same rows, one config per subject
        try:
            return [r for s in SUBJECTS for r in data.hub_rows(FALLBACK_HUB_ID, s, split)]
        except Exception:
            raise exc from None


def load(
    split: str = DEFAULT_SPLIT, path: str | Path | None = None, limit: int | None = None, skip_unanswered: bool = False
) -> list[dict]:
    """Examples {id, question, solution, answer, level, type}; `answer` is the normalised boxed answer."""
    rows = data.local_rows(path, split, ("problem", "solution")) if path else _hub_rows(split)
    examples = []
    for i, row in enumerate(rows):
        if skip_unanswered and last_boxed(row["solution"]) is None:
            continue
        examples.append(example(row, f"math-{split}-{i}", f"{path or HUB[0]} {split} record {i}"))
        if limit and len(examples) == limit:
            break
    return examples


def example(row: dict, ident: str, where: str) -> dict:
    boxed = last_boxed(row["solution"])
    if boxed is None:
        raise ValueError(f"{where}: no \\boxed{{}} answer in the solution")
    return {
        "id": ident,
        "question": row["problem"],
        "solution": row["solution"],
        "answer": normalize(boxed),
        "level": row.get("level"),
        "type": row.get("type"),
    }


# ----------------------------------------------------------------------------- answers


def _group(text: str, start: int) -> tuple[str, int] | None:
    """The balanced {...} opening at `start`: (content, index after the closing brace)."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} / \\fbox{...} (or "\\boxed 5"); None when there is none or it is unclosed."""
    starts = [m for m in re.finditer(r"\\(?:boxed|fbox)", text)]
    if not starts:
        return None
    rest = text[starts[-1].end() :]
    if rest.startswith(" "):
        m = re.match(r" +([^\s$]+)", rest)
        return m.group(1) if m else None
    stripped = rest.lstrip()
    if not stripped.startswith("{"):
        return None
    found = _group(stripped, 0)
    return found[0] if found else None


def _fix_shorthand(s: str, command: str, n_args: int) -> str:
    r"""\frac12 -> \frac{1}{2}, \sqrt3 -> \sqrt{3}."""
    out, i = [], 0
    while i < len(s):
        if s.startswith(command, i) and not s[i + len(command) : i + len(command) + 1].isalpha():
            out.append(command)
            i += len(command)
            for _ in range(n_args):
                if i < len(s) and s[i] == "{":
                    found = _group(s, i)
                    if found is None:
                        out.append(s[i:])
                        return "".join(out)
                    out.append("{" + found[0] + "}")
                    i = found[1]
                elif i < len(s) and s[i].isalnum():
                    out.append("{" + s[i] + "}")
                    i += 1
                else:  # \sqrt[3]{x}, or a bare command: left as written
                    break
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _unwrap(s: str, command: str) -> str:
    while (m := re.search(re.escape(command) + r"\{", s)) is not None:
        found = _group(s, m.end() - 1)
        if found is None:
            break
        s = s[: m.start()] + found[0] + s[found[1] :]
    return s


def normalize(answer: str | None) -> str | None:
    if answer is None:
        return None
    s = answer.strip().replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\left", "").replace("\\right", "")
    s = (
        re.sub(r"\^\{?\\circ\}?", "", s)
        .replace("°", "")
        .replace("\\$", "")
        .replace("$", "")
        .replace("\\%", "")
        .replace("%", "")
    )
    s = re.sub(r"\\(?:text|mbox|mathrm)\{\s[^{}]*\}\s*$", "", s)  # trailing units: 10\text{ inches}
    for command in ("\\text", "\\textbf", "\\mbox", "\\mathrm", "\\boxed"):
        s = _unwrap(s, command)
    s = re.sub(r"\\[,;: ]", "", s).replace("{,}", "")
    parts = s.split("=")
    if len(parts) == 2 and len(parts[0].strip()) <= 2:  # "x = 5", "k=3"
        s = parts[1]
    s = s.replace(" ", "")
    s = _fix_shorthand(_fix_shorthand(s, "\\frac", 2), "\\sqrt", 1)
    s = re.sub(r"^(-?)\.(\d)", r"\g<1>0.\2", s).replace("{.", "{0.")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    if m:
        s = f"\\frac{{{m.group(1)}}}{{{m.group(2)}}}"
    return s.rstrip(".")


def to_fraction(s: str) -> Fraction | None:
    """A plain rational written as an integer, a decimal or \\frac{a}{b} (with a sign); else None."""
    if re.fullmatch(r"[-+]?\d+(\.\d+)?", s):
        return Fraction(s)
    m = re.fullmatch(r"([-+]?)\\frac\{([-+]?\d+)\}\{([-+]?\d+)\}", s)
    if m and int(m.group(3)) != 0:
        value = Fraction(int(m.group(2)), int(m.group(3)))
        return -value if m.group(1) == "-" else value
    return None


def equivalent(a: str | None, b: str | None) -> bool:
    a, b = normalize(a), normalize(b)
    if a is None or b is None or not a or not b:
        return False
    if a == b:
        return True
    fa, fb = to_fraction(a), to_fraction(b)
    return fa is not None and fa == fb


def predict(text: str, example: dict | None = None, mode: str = "flexible") -> str | None:
    """strict: the last \\boxed{} (the reference's rule, 6.4); flexible: else what follows the last "the answer is"."""
    boxed = last_boxed(text)
    if boxed is not None or mode == "strict":
        return normalize(boxed) or None
    said = re.findall(r"answer is[:\s]*([^\n]+)", text, re.IGNORECASE)
    return normalize(said[-1].strip().rstrip(".")) or None if said else None


def is_correct(prediction: str | None, gold: str) -> bool:
    return equivalent(prediction, gold)


def states_answer(step: str) -> bool:
    """6.3: MATH ends on 'boxed' (and, as the other sets, on 'the answer is')."""
    return "\\boxed" in step or "\\fbox" in step or "the answer is" in step.lower()


# ----------------------------------------------------------------------------- few-shot (6.2)


def shot_pool(path: str | Path | None = None) -> list[dict]:
    return load("train", path, skip_unanswered=True)


def prefix(example: dict) -> str:
    return f"Question: {example['question']}\nAnswer:"


def shot_steps(example: dict) -> list[str]:
    """6.2: the solution split on ". " into steps (each keeps its period)."""
    pieces = [p.strip() for p in example["solution"].split(". ")]
    return [p if i == len(pieces) - 1 or p.endswith(".") else p + "." for i, p in enumerate(pieces) if p]


# ----------------------------------------------------------------------------- data stages (rationalyst.md 2, 3.2)


def mining_examples(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """The rows the data stages read: prefilter references and extraction documents (train)."""
    return load("train", path, limit, skip_unanswered=True)


def reference_text(example: dict) -> str:
    return example["question"] + "\n" + example["solution"]


def document_text(example: dict) -> str:
    """3.2: "Question: {problem}\nAnswer: {solution}"."""
    return f"Question: {example['question']}\nAnswer: {example['solution']}"

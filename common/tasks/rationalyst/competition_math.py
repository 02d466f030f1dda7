"""MATH (Hendrycks et al. 2021): competition problems with LaTeX solutions ending in \\boxed{answer}.

Rows: {"problem", "level", "type", "solution"}. From the Hub (`lighteval/MATH`, config `all`, as the
reference; it has been withdrawn from the Hub, so on failure the same rows are read per subject from
`EleutherAI/hendrycks_math`), or locally: the original release's folder (`MATH/test/<subject>/<n>.json`,
one object per file; point at `MATH/`), or a JSONL/JSON/parquet file of the rows.

Answers: the last \\boxed{...} (or \\fbox) of the text (flexible: else what follows "the answer is"), then a
safe normalisation (no eval): LaTeX spacing, \\left/\\right, \\dfrac/\\tfrac, units in \\text{...}, degrees, $,
%, "x =" prefixes, \\frac12 / \\sqrt3 shorthands and thousands separators; matrix rows are kept. Two answers
are equal when their normalised strings are, or both are plain rationals (7, -0.5, \\frac{3}{4}, 3/4) of the
same value; anything else is decided by math-verify's LaTeX grammar, with time limits
(docs/answer-checking.md has the formats, the figures and the reasons).
"""

from __future__ import annotations

import cmath
import functools
import re
import threading
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


_ROW = "\x00"  # the LaTeX row separator \\ while the rest is normalised (its backslash must not merge rows)
# trailing units: "10\text{ inches}", "25\text{cents}", "5 \text{ cm}^2", "\mbox{ sq units}"
_UNITS = re.compile(r"(?<=[\d}])\s*\\(?:text|mbox|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}(?:\^\{?[23]\}?)?\s*$")
# "x = 5", "k=3", "\theta = -\frac{\pi}{6}", "a_1 = 2": a variable name before a single "="
_ASSIGNED = re.compile(r"^\s*(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?\s*=(?!=)")


def normalize(answer: str | None) -> str | None:
    """A canonical string of a MATH answer (no eval, no parsing): see the module docstring. It stays LaTeX
    that math-verify can read (matrix rows, spaces between a command and a letter are kept)."""
    if answer is None:
        return None
    s = answer.strip().replace("\n", " ").replace("\\\\", _ROW).replace("\\!", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\left", "").replace("\\right", "")
    s = s.replace("bmatrix}", "pmatrix}")
    s = (
        re.sub(r"\^\{?\\circ\}?", "", s)
        .replace("°", "")
        .replace("\\$", "")
        .replace("$", "")
        .replace("\\%", "")
        .replace("%", "")
    )
    s = _UNITS.sub("", s)
    for command in ("\\text", "\\textbf", "\\mbox", "\\mathrm", "\\boxed"):
        s = _unwrap(s, command)
    s = re.sub(r"\\[,;: ]", "", s).replace("{,}", "")
    if s.count("=") == 1 and _ASSIGNED.match(s):
        s = s.split("=", 1)[1]
    # spaces go, except the one a command needs before a letter ("\pi r", not "\pir")
    s = re.sub(r"(\\[A-Za-z]+)\s+(?=[A-Za-z])|\s+", lambda m: m.group(1) + " " if m.group(1) else "", s.strip())
    s = _fix_shorthand(_fix_shorthand(s, "\\frac", 2), "\\sqrt", 1)
    s = re.sub(r"^(-?)\.(\d)", r"\g<1>0.\2", s).replace("{.", "{0.")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    if m:
        s = f"\\frac{{{m.group(1)}}}{{{m.group(2)}}}"
    return s.rstrip(".").replace(_ROW, "\\\\")


def to_fraction(s: str) -> Fraction | None:
    """A plain rational written as an integer, a decimal or \\frac{a}{b} (with a sign); else None."""
    if re.fullmatch(r"[-+]?\d+(\.\d+)?", s):
        return Fraction(s)
    m = re.fullmatch(r"([-+]?)\\frac\{([-+]?\d+)\}\{([-+]?\d+)\}", s)
    if m and int(m.group(3)) != 0:
        value = Fraction(int(m.group(2)), int(m.group(3)))
        return -value if m.group(1) == "-" else value
    return None


def _same_string_or_rational(a: str, b: str) -> bool | None:
    """The cheap verdict on two normalised answers: True (same string or same rational), False (two
    different rationals), None (undecided: math-verify's turn)."""
    if a == b:
        return True
    fa, fb = to_fraction(a), to_fraction(b)
    if fa is not None and fb is not None:
        return fa == fb
    return None


# math-verify (the checker of current open reasoning work) decides what the cheap comparison leaves open.
# Only its LaTeX parser is used (an antlr grammar building sympy objects): its plain-expression parser runs
# sympy's parse_expr, which evals text, and model output is never evaluated. Its timeouts are signal
# alarms (whole seconds, main thread only); answers longer than MATH_VERIFY_MAX_CHARS are not parsed.
MATH_VERIFY_TIMEOUT_S = 1
MATH_VERIFY_MAX_CHARS = 300


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@functools.lru_cache(maxsize=1 << 14)
def _parsed(latex: str) -> tuple:
    """math-verify's reading of one normalised answer (cached: a gold is read once per run); () if none."""
    from math_verify import LatexExtractionConfig, parse

    try:
        found = parse(
            f"${latex}$",
            extraction_config=[LatexExtractionConfig()],
            fallback_mode="no_fallback",
            parsing_timeout=MATH_VERIFY_TIMEOUT_S,
        )
    except Exception:  # a parser failure on odd input is no reading, never a stopped stage
        return ()
    return tuple(found)


def _far_apart(g, p) -> bool:
    """Both are numbers (no variables) more than 1e-4 apart (relative): no exact or 6-decimal check can call
    them equal, so math-verify's symbolic simplification (tens of ms) is skipped."""
    import sympy
    from math_verify.utils import timeout

    if not (isinstance(g, sympy.Expr) and isinstance(p, sympy.Expr) and g.is_number and p.is_number):
        return False
    try:
        a, b = timeout(MATH_VERIFY_TIMEOUT_S)(lambda: (complex(sympy.N(g)), complex(sympy.N(p))))()
    except Exception:
        return False
    if any(map(cmath.isnan, (a, b))) or any(map(cmath.isinf, (a, b))):
        return False
    return abs(a - b) > 1e-4 * max(1.0, abs(a), abs(b))


def math_verify_equal(gold: str, prediction: str) -> bool:
    """math-verify's verdict on two LaTeX answers (gold first: its check is not symmetric); False when it
    cannot read one, runs out of time, fails, or is called outside the main thread (no alarm there)."""
    if max(len(gold), len(prediction)) > MATH_VERIFY_MAX_CHARS or not _on_main_thread():
        return False
    return _verified(gold, prediction)


@functools.lru_cache(maxsize=1 << 16)
def _verified(gold: str, prediction: str) -> bool:
    from math_verify import verify

    g, p = _parsed(gold), _parsed(prediction)
    if not g or not p or _far_apart(g[0], p[0]):
        return False
    try:
        return bool(verify(list(g), list(p), timeout_seconds=MATH_VERIFY_TIMEOUT_S))
    except Exception:  # a sympy failure on odd input is a wrong answer, never a stopped stage
        return False


def equivalent(a: str | None, b: str | None, use_math_verify: bool = True) -> bool:
    """a (the gold) and b (the prediction) name the same answer: the same normalised string or rational,
    else math-verify's verdict (use_math_verify=False: the normaliser alone)."""
    a, b = normalize(a), normalize(b)
    if not a or not b:
        return False
    cheap = _same_string_or_rational(a, b)
    if cheap is not None:
        return cheap
    return use_math_verify and math_verify_equal(a, b)


# "the answer is ..." in flexible mode: the math after it ($...$, \(...\), \[...\]), else the words up to
# the end of the sentence; "Final Answer: The final answer is $24$. I hope it is correct." gives 24
_ANSWER_IS = re.compile(r"answer is|final answer\s*:", re.IGNORECASE)
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_SENTENCE_END = re.compile(
    r"\.(?:\s|$)|,\s+(?=[A-Za-z]{2})|;|\n|\s+(?:since|because|as|so|which|for|and)\b", re.IGNORECASE
)


def answer_after_phrase(text: str) -> str | None:
    """What follows the last "the answer is" / "Final Answer:", as written (not normalised); None if none."""
    said = list(_ANSWER_IS.finditer(text))
    if not said:
        return None
    rest = text[said[-1].end() :].lstrip(" \t:*")
    span = _MATH_SPAN.match(rest)
    if span:
        return next(g for g in span.groups() if g is not None).strip().rstrip(".").strip() or None
    rest = rest.split("\n", 1)[0]
    chunk = rest[: m.start()] if (m := _SENTENCE_END.search(rest)) else rest
    chunk = chunk.strip().strip("*").strip()
    if len(re.findall(r"(?<![\\\w])[A-Za-z]{2,}\b", chunk)) >= 3:  # "the answer is going to be in base 10"
        return None
    number = re.fullmatch(r"([-+]?\$?\d[\d,]*(?:\.\d+)?)\s+[A-Za-z][A-Za-z ]*", chunk)  # "29 cents"
    if number:
        return number.group(1)
    worked = re.fullmatch(r"[\d\s+\-*/().^{}]+=\s*([^=]+)", chunk)  # "2 + (-2) = 0": what it comes to
    return (worked.group(1) if worked else chunk) or None


def predict(text: str, example: dict | None = None, mode: str = "flexible") -> str | None:
    """strict: the last \\boxed{} (the reference's rule, 6.4); flexible: else what follows the last "the answer is"."""
    boxed = last_boxed(text)
    if boxed is not None or mode == "strict":
        return normalize(boxed) or None
    return normalize(answer_after_phrase(text)) or None


def is_correct(prediction: str | None, gold: str) -> bool:
    return equivalent(gold, prediction)


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

"""MATH answer checking: agreement with hand-written verdicts, and the cost of checking a 5,000-question run.

Agreement: the pairs of tests/test_tasks_math.py (EQUIVALENCE: realistic gold/prediction pairs with the
expected verdict; CONTESTED: value-equal pairs a grader may reject for their form, shown, not scored),
checked by the project's normaliser alone, by math-verify alone (on the raw strings, LaTeX parser only),
and by the two together as `competition_math.is_correct` runs them (normalised comparison first, math-verify
only where it is undecided). `--baseline FILE` adds the `equivalent` of another competition_math.py (e.g.
the main branch's) as a row.

Timing: 5,000 questions in MATH's mix of answer kinds, half answered right (a tenth of those in another
form than the gold's), each checked as inference does (strict and flexible extraction from a model's
last step, two is_correct calls), math-verify's import included.

    python bench/math_answers.py [--baseline /path/to/competition_math.py] [--questions 5000]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.tasks.rationalyst import competition_math as m  # noqa: E402
from tests.test_tasks_math import CONTESTED, EQUIVALENCE  # noqa: E402


def math_verify_alone(gold: str, prediction: str) -> bool:
    from math_verify import LatexExtractionConfig, parse, verify

    def read(s):
        return parse(f"${s}$", [LatexExtractionConfig()], fallback_mode="no_fallback", parsing_timeout=1)

    g, p = read(gold), read(prediction)
    return bool(g and p and verify(g, p, timeout_seconds=1))


def checkers(baseline: str | None) -> dict:
    out = {}
    if baseline:
        spec = importlib.util.spec_from_file_location("baseline_math", baseline)
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
        out["baseline normaliser"] = lambda g, p: old.equivalent(p, g)
    out["normaliser alone"] = lambda g, p: m.equivalent(g, p, use_math_verify=False)
    out["math-verify alone"] = math_verify_alone
    out["normaliser, then math-verify (is_correct)"] = lambda g, p: m.is_correct(m.normalize(p), m.normalize(g))
    return out


def agreement(baseline: str | None) -> None:
    runs = checkers(baseline)
    print(f"{len(EQUIVALENCE)} hand-written pairs, {sum(w for *_, w in EQUIVALENCE)} equivalent")
    for name, check in runs.items():
        verdicts = [check(g, p) for g, p, _ in EQUIVALENCE]
        right = sum(v == w for v, (*_, w) in zip(verdicts, EQUIVALENCE))
        false_pos = sum(v and not w for v, (*_, w) in zip(verdicts, EQUIVALENCE))
        print(
            f"  {name:45s} {right}/{len(EQUIVALENCE)} = {100 * right / len(EQUIVALENCE):.1f}%  false positives {false_pos}"
        )
        for v, (g, p, w) in zip(verdicts, EQUIVALENCE):
            if v != w:
                print(f"      wrong: {g!r} vs {p!r} -> {v}")
    print("contested (value-equal; shown, not scored):")
    for g, p in CONTESTED:
        print(f"  {g!r} vs {p!r}: " + ", ".join(f"{n.split(' (')[0]} {c(g, p)}" for n, c in runs.items()))


# answer kinds with their share of MATH answers (integers most); each gives (gold, same form, other form, wrong)
WORDS = ["Monday", "Tuesday", "even", "odd", "Paul", "Sarah"]
KINDS = [
    (0.606, lambda j: (str(j), str(j), f"x = {j}", str(j + random.choice([1, -1, 10])))),
    (0.14, lambda j: (f"\\frac{{{j}}}{{{j + 1}}}",) * 2 + (f"\\dfrac{{{j}}}{{{j + 1}}}", f"\\frac{{{j + 1}}}{{{j}}}")),
    (
        0.08,
        lambda j: (f"{j}\\sqrt{{{j + 1}}}",) * 2 + (f"\\sqrt{{{j + 1}}}\\cdot {j}", f"{j}\\sqrt{{{j + 2}}}"),
    ),
    (0.04, lambda j: (f"{j}\\pi",) * 2 + (f"\\pi \\cdot {j}", f"{j + 1}\\pi")),
    (0.03, lambda j: (f"({j},{j + 1})",) * 2 + (f"\\left( {j}, {j + 1} \\right)", f"({j + 1},{j})")),
    (0.02, lambda j: (f"(-\\infty,{j}]",) * 2 + (f"(-\\infty, {j}]", f"(-\\infty,{j})")),
    (
        0.014,
        lambda j: (
            (f"\\begin{{pmatrix}} {j} \\\\ {j + 1} \\end{{pmatrix}}",) * 2
            + (
                f"\\begin{{bmatrix}}{j}\\\\{j + 1}\\end{{bmatrix}}",
                f"\\begin{{pmatrix}} {j + 1} \\\\ {j} \\end{{pmatrix}}",
            )
        ),
    ),
    (0.03, lambda j: (f"\\text{{{WORDS[j % 6]}}}",) * 2 + (WORDS[j % 6], f"\\text{{{WORDS[(j + 1) % 6]}}}")),
    (0.04, lambda j: (f"x^2+{j}x+{j + 1}",) * 2 + (f"{j + 1}+{j}x+x^2", f"x^2+{j + 1}x+{j}")),
]


def questions(n: int, seed: int = 0) -> list[tuple[str, str, bool]]:
    random.seed(seed)
    out = []
    for i in range(n):
        make = random.choices([k for _, k in KINDS], weights=[w for w, _ in KINDS])[0]
        gold, same, other, wrong = make(i + 2)
        right = random.random() < 0.5
        out.append((gold, (other if random.random() < 0.1 else same) if right else wrong, right))
    return out


def check_run(qs: list, use_math_verify: bool) -> tuple[float, int]:
    """(seconds, verdicts as intended) for checking the questions as inference does."""
    start = time.perf_counter()
    golds = [m.normalize(g) for g, _, _ in qs]  # load() stores the normalised gold
    agree = 0
    for (_, pred, right), gold in zip(qs, golds):
        step = f"Adding these up, the answer is $\\boxed{{{pred}}}$."
        flexible, strict = m.predict(step, None, "flexible"), m.predict(step, None, "strict")
        agree += m.equivalent(gold, flexible, use_math_verify) == right
        m.equivalent(gold, strict, use_math_verify)
    return time.perf_counter() - start, agree


def timing(n: int) -> None:
    qs = questions(n)
    seconds, agree = check_run(qs, use_math_verify=True)  # first: math-verify's import and warm-up count
    calls = m._verified.cache_info()
    print(
        f"{n} questions checked in {seconds:.1f} s ({1000 * seconds / n:.2f} ms each), math-verify import included; "
        f"math-verify consulted on {calls.misses} distinct pairs ({calls.hits} cached); verdicts as intended: {agree}/{n}"
    )
    seconds, agree = check_run(qs, use_math_verify=False)
    print(f"  the normaliser alone: {seconds:.1f} s; verdicts as intended: {agree}/{n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", help="another competition_math.py whose normaliser to score as well")
    ap.add_argument("--questions", type=int, default=5000)
    args = ap.parse_args()
    timing(args.questions)  # first: math-verify's import and warm-up are part of the cost
    agreement(args.baseline)


if __name__ == "__main__":
    main()

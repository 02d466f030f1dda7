import builtins
import json
import re
import threading
import time

import pytest

from common.tasks.rationalyst import choose_shots, context, get_task
from common.tasks.rationalyst import competition_math as m

ROWS = [
    {
        "problem": "What is $\\frac{1}{2} + \\frac{1}{4}$?",
        "level": "Level 1",
        "type": "Prealgebra",
        "solution": "We have $\\frac{1}{2} = \\frac{2}{4}$. So the sum is $\\frac{2}{4} + \\frac{1}{4} = \\boxed{\\frac{3}{4}}$.",
    },
    {
        "problem": "Solve $2x + 3 = 11$.",
        "level": "Level 2",
        "type": "Algebra",
        "solution": "Subtract 3 from both sides to get $2x = 8$. Divide by 2. Then $x = \\boxed{4}$.",
    },
    {
        "problem": "How many degrees are in each angle of an equilateral triangle?",
        "level": "Level 1",
        "type": "Geometry",
        "solution": "The angles sum to $180^\\circ$ and are equal, so each is $\\boxed{60^\\circ}$.",
    },
]


def write_original_release(root):
    """MATH's original layout: MATH/{train,test}/<subject>/<n>.json, one problem per file."""
    for split in ("train", "test"):
        for i, row in enumerate(ROWS):
            folder = root / split / row["type"].lower()
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}.json").write_text(json.dumps(row))
    return root


def test_load_original_folder_and_jsonl(tmp_path):
    exs = m.load("test", write_original_release(tmp_path / "MATH"))
    assert sorted(e["answer"] for e in exs) == ["4", "60", "\\frac{3}{4}"]
    assert {e["id"] for e in exs} == {"math-test-0", "math-test-1", "math-test-2"}
    f = tmp_path / "test.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert [e["answer"] for e in m.load("test", f, limit=2)] == ["\\frac{3}{4}", "4"]
    (tmp_path / "bad.jsonl").write_text(json.dumps({"problem": "p", "solution": "no box here"}) + "\n")
    with pytest.raises(ValueError, match="record 0: no \\\\boxed"):
        m.load("test", tmp_path / "bad.jsonl")


def test_withdrawn_hub_set_falls_back_to_hendrycks_math_for_the_task_and_for_extraction(tmp_path, monkeypatch):
    """lighteval/MATH is gone from the Hub: EleutherAI/hendrycks_math serves the same rows, one config per
    subject. The Hub is played by parquet files in its row format, read through `datasets` as the Hub's are."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import load_dataset

    from common.tasks import data
    from common.tasks.rationalyst import documents

    files = {}
    for subject in m.SUBJECTS:
        rows = [r for r in ROWS if r["type"].lower() == subject]
        if rows:
            files[subject] = tmp_path / f"{subject}.parquet"
            pq.write_table(pa.Table.from_pylist(rows), files[subject])
    calls = []

    def hub_rows(hub_id, config, split):
        calls.append((hub_id, config, split))
        if hub_id == "lighteval/MATH":
            raise FileNotFoundError("Dataset 'lighteval/MATH' doesn't exist on the Hub")
        if config not in files:
            return []
        return list(load_dataset("parquet", data_files=str(files[config]), split="train"))

    monkeypatch.setattr(data, "hub_rows", hub_rows)
    test = m.load("test")
    assert calls[0] == ("lighteval/MATH", "all", "test")
    assert [c[1] for c in calls[1:]] == list(m.SUBJECTS) and {c[0] for c in calls[1:]} == {"EleutherAI/hendrycks_math"}
    assert sorted(e["answer"] for e in test) == sorted(["\\frac{3}{4}", "4", "60"])
    calls.clear()
    docs = list(documents(["math"]))  # the datasets family of extraction reads MATH the same way (train)
    assert len(docs) == 3 and calls[0] == ("lighteval/MATH", "all", "train") and len(calls) == 1 + len(m.SUBJECTS)
    assert {d["source"] for d in docs} == {"math"} and "equilateral triangle" in " ".join(d["text"] for d in docs)


def test_a_hub_failure_of_both_sets_names_the_original(monkeypatch):
    from common.tasks import data

    def hub_rows(hub_id, config, split):
        raise ConnectionError(f"no network for {hub_id}")

    monkeypatch.setattr(data, "hub_rows", hub_rows)
    with pytest.raises(ConnectionError, match="lighteval/MATH"):
        m.load("test")


def test_few_shot_layout(tmp_path):
    task = get_task("math")
    pool = task.shot_pool(write_original_release(tmp_path / "MATH"))
    shots = choose_shots(task, pool, 5, seed=14)
    msgs = context(task, {"question": "What is 1+1?"}, shots)
    assert msgs[0] == {"role": "system", "content": m.SYSTEM} and "\\boxed{}" in m.SYSTEM
    assert msgs[-1] == {"role": "user", "content": "Question: What is 1+1?\nAnswer:"}
    solve = msgs.index({"role": "user", "content": "Question: Solve $2x + 3 = 11$.\nAnswer:"})
    # 6.2: the solution split on ". ", one assistant turn per piece
    assert [x["content"] for x in msgs[solve + 1 : solve + 4]] == [
        "Subtract 3 from both sides to get $2x = 8$.",
        "Divide by 2.",
        "Then $x = \\boxed{4}$.",
    ]
    assert sum(x["role"] == "user" for x in msgs) == 4  # 3 shots (all the pool has) + the question


@pytest.mark.parametrize(
    "text,strict,flexible",
    [
        ("So the total is $\\boxed{\\dfrac{3}{4}}$.", "\\frac{3}{4}", "\\frac{3}{4}"),
        ("Each angle measures $\\boxed{60^\\circ}$.", "60", "60"),
        ("Thus $x = \\boxed{x=4}$", "4", "4"),
        ("The area is \\boxed{12\\text{ square units}}.", "12", "12"),
        ("We get $\\boxed{\\left( 1, -\\frac12 \\right)}$.", "(1,-\\frac{1}{2})", "(1,-\\frac{1}{2})"),
        ("Earlier I wrote \\boxed{5}, but correcting, the result is \\boxed{7}.", "7", "7"),
        ("The answer is $\\frac{5}{2}$.", None, "\\frac{5}{2}"),
        ("I could not finish the problem.", None, None),
        ("The result is \\boxed{3", None, None),  # unclosed
        # issue 12, defect 1: matrix rows stay rows
        (
            "So $\\mathbf{v} = \\boxed{\\begin{pmatrix} 2 \\\\ 13 \\end{pmatrix}}$.",
            *["\\begin{pmatrix}2\\\\13\\end{pmatrix}"] * 2,
        ),
        # defect 2: the "answer is" path, from Minerva-style and PRM800K (PRMBench) solutions
        ("Final Answer: The final answer is $24$. I hope it is correct.", None, "24"),
        ("The final answer is 24. I hope it is correct.", None, "24"),
        ("The answer is 5, since the other root is negative.", None, "5"),
        ("Therefore, the answer is \\(\\frac{1}{2}\\).", None, "\\frac{1}{2}"),
        ("So the answer is \\[\\frac{3}{4}\\]", None, "\\frac{3}{4}"),
        ("That means a pencil costs 29 cents, so the answer is 29 cents.", None, "29"),
        ("So our answer is $31$ possible values of $p$.", None, "31"),
        ("So, the final answer is $\\theta = -\\frac{\\pi}{6}.$", None, "-\\frac{\\pi}{6}"),
        ("But I'm looking for the largest $x$-value, so the answer is $x=6$.", None, "6"),
        ("So the answer is 2 + (-2) = 0.", None, "0"),
        ("So the answer is $5+4+2=\\boxed{11}$.", "11", "11"),
        ("The answer is $10\\text{ cm}^2$.", None, "10"),
        ("The answer is $25\\text{cents}$.", None, "25"),
        ("The answer is 1, 2, 3.", None, "1,2,3"),
        ("The answer is **7**.", None, "7"),
        ("And because we converted to base 10, the answer is going to be in base 10.", None, None),  # prose
    ],
)
def test_extraction(text, strict, flexible):
    assert m.predict(text, None, "strict") == strict
    assert m.predict(text, None, "flexible") == flexible


def test_matrix_rows_are_kept():
    """Defect 1: "\\\\" became "\\" and then "\\ " was deleted, so rows merged."""
    col = m.normalize("\\begin{pmatrix} 2 \\\\ 13 \\end{pmatrix}")
    assert col == "\\begin{pmatrix}2\\\\13\\end{pmatrix}" != m.normalize("\\begin{pmatrix} 21 \\\\ 3 \\end{pmatrix}")
    assert m.normalize("\\begin{pmatrix}5\\\\7\\end{pmatrix}") == m.normalize(
        "\\begin{pmatrix} 5 \\\\ 7 \\end{pmatrix}"
    )
    assert m.normalize("\\pi r^2") == "\\pi r^2"  # a command keeps the space before a letter


# Hand-written realistic pairs (issue 12), (gold as MATH writes it, prediction as a model writes it inside \boxed{}, expected verdict)
EQUIVALENCE = [
    # fractions
    (r"\frac{3}{4}", r"\dfrac{3}{4}", True),
    (r"\frac{3}{4}", r"0.75", True),
    (r"\frac{3}{4}", r"3/4", True),
    (r"\frac{3}{4}", r"\frac34", True),
    (r"\frac{1}{2}", r"\tfrac12", True),
    (r"-\frac{1}{2}", r"-0.5", True),
    (r"-\frac{1}{2}", r"\frac{-1}{2}", True),
    (r"\frac{1}{3}", r"0.33", False),
    (r"\frac{3}{5}", r"\frac{3}{4}", False),
    (r"\frac{7}{9}", r"\frac{9}{7}", False),
    # roots
    (r"\frac{\sqrt{2}}{2}", r"\sqrt{2}/2", True),
    (r"\frac{\sqrt{2}}{2}", r"\frac{\sqrt2}{2}", True),
    (r"\frac{\sqrt{3}}{3}", r"\frac{\sqrt{2}}{2}", False),
    (r"2\sqrt{3}", r"2\sqrt3", True),
    (r"4+2\sqrt{3}", r"4 + 2\sqrt{3}", True),
    (r"2+\sqrt{3}", r"\sqrt{3}+2", True),
    (r"\sqrt[3]{2}", r"\sqrt[3]{2}", True),
    (r"\sqrt[3]{2}", r"\sqrt{2}", False),
    (r"1+\sqrt{19},1-\sqrt{19}", r"1 - \sqrt{19}, 1 + \sqrt{19}", True),
    # degrees
    (r"60^\circ", r"60", True),
    (r"60^\circ", r"60^{\circ}", True),
    (r"60", r"60°", True),
    (r"30", r"30\text{ degrees}", True),
    (r"60^\circ", r"120^\circ", False),
    # units and currency
    (r"12", r"12\text{ square units}", True),
    (r"25", r"25\text{cents}", True),
    (r"5", r"5 \text{ cm}^2", True),
    (r"10", r"10\mbox{ inches}", True),
    (r"12", r"13\text{ inches}", False),
    (r"\$18.90", r"18.90", True),
    (r"\$5.00", r"5", True),
    (r"1.25", r"\$1.25", True),
    # percentages
    (r"10\%", r"10", True),
    (r"10", r"10\%", True),
    (r"25\%", r"25.0\%", True),
    (r"15\%", r"20\%", False),
    # intervals
    (r"(-\infty,3]", r"(-\infty, 3]", True),
    (r"(-\infty,3]", r"(-\infty,3)", False),
    (r"[2,5)", r"\left[ 2, 5 \right)", True),
    (r"(-\infty,-2)\cup(2,\infty)", r"(-\infty, -2) \cup (2, \infty)", True),
    (r"(-\infty,-2)\cup(2,\infty)", r"(2,\infty)\cup(-\infty,-2)", True),
    (r"[1,4]", r"[1,5]", False),
    (r"(0,1)", r"[0,1]", False),
    # matrices and vectors
    (r"\begin{pmatrix} 2 \\ 13 \end{pmatrix}", r"\begin{pmatrix} 21 \\ 3 \end{pmatrix}", False),
    (r"\begin{pmatrix}5\\7\end{pmatrix}", r"\begin{pmatrix} 5 \\ 7 \end{pmatrix}", True),
    (r"\begin{pmatrix} 1 \\ 2 \\ 3 \end{pmatrix}", r"\begin{pmatrix} 1 \\ 23 \end{pmatrix}", False),
    (r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", r"\begin{bmatrix} 1 & 2 \\ 3 & 4 \end{bmatrix}", True),
    (r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", r"\begin{pmatrix} 1 & 3 \\ 2 & 4 \end{pmatrix}", False),
    (r"\begin{pmatrix} \frac{1}{2} \\ -1 \end{pmatrix}", r"\begin{pmatrix} 0.5 \\ -1 \end{pmatrix}", True),
    (r"\begin{pmatrix} -2 \\ 3 \end{pmatrix}", r"\begin{pmatrix} 2 \\ -3 \end{pmatrix}", False),
    (r"\begin{pmatrix} 3 \\ -1 \\ 2 \end{pmatrix}", r"\begin{pmatrix}3\\-1\\2\end{pmatrix}", True),
    # ordered tuples, lists of solutions, sets
    (r"(1,2)", r"(2,1)", False),
    (r"\left( 1, -\frac12 \right)", r"(1,-\frac{1}{2})", True),
    (r"(3,-1)", r"(3, -1)", True),
    (r"(1,2,3)", r"(1,2)", False),
    (r"1,2", r"2,1", True),
    (r"-2,3", r"3, -2", True),
    (r"1,2", r"1,3", False),
    (r"\{1,2\}", r"\{2,1\}", True),
    # words and letters
    (r"\text{Monday}", r"Monday", True),
    (r"\text{even}", r"\text{odd}", False),
    (r"\text{(C)}", r"(C)", True),
    (r"\text{(C)}", r"C", True),
    (r"\text{(C)}", r"\text{(D)}", False),
    # equations and expressions
    (r"y=2x+3", r"y = 2x + 3", True),
    (r"y=2x+3", r"y=3x+2", False),
    (r"x=5", r"5", True),
    (r"3x-5y+9z+4=0", r"3x - 5y + 9z + 4 = 0", True),
    (r"x^2+2x+1", r"1+2x+x^2", True),
    (r"x^3", r"x^{3}", True),
    (r"36\pi", r"36 \pi", True),
    (r"\frac{7\pi}{6}", r"\frac{7}{6}\pi", True),
    (r"4\pi", r"4\pi^2", False),
    (r"-\frac{\pi}{6}", r"\theta = -\frac{\pi}{6}", True),
    # numbers
    (r"1000", r"1,000", True),
    (r"1000000", r"1{,}000{,}000", True),
    (r"0.5", r".5", True),
    (r"28.4", r"28.40", True),
    (r"5", r"5.", True),
    (r"4.5", r"4", False),
    (r"7", r"-7", False),
    (r"8910", r"8901", False),
    # bases, complex numbers, infinity
    (r"40_9", r"40_{9}", True),
    (r"40_9", r"41_9", False),
    (r"3-4i", r"3 - 4i", True),
    (r"3-4i", r"-4i+3", True),
    (r"3-4i", r"3+4i", False),
    (r"-\infty", r"\infty", False),
    # near misses a lenient checker might pass
    (r"\frac{1}{2}", r"\frac{1}{2}x", False),
    (r"2", r"2x", False),
    (r"x+1", r"y+1", False),
    (r"5", r"x=6", False),
    (r"0.001", r"0.0011", False),
    (r"1000000", r"1000001", False),
    (r"\pi", r"3.14", False),
    (r"\frac{22}{7}", r"\pi", False),
    (r"\frac{1}{3}", r"0.3333", False),
    (r"e", r"2.718", False),
    (r"-1", r"1", False),
    (r"\pm 2", r"2", False),
    (r"(1,2)", r"\{1,2\}", False),
    (r"\text{A}", r"\text{B}", False),
]
# value-equal, but a grader may want the form the question asks for ("simplest form", "common fraction"):
# reported, not scored
CONTESTED = [
    (r"\frac{3}{4}", r"\frac{6}{8}"),
    (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"),
    (r"2\sqrt{3}", r"\sqrt{12}"),
    (r"10\%", r"0.1"),
    (r"\frac{1}{3}", r"0.333333"),
    (r"1024", r"2^{10}"),
    (r"4", r"2+2"),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"(1,2)"),
]
# the one pair of the table math-verify gets wrong (it reads the pair (1,2) as the set {1,2}); the docs report it
KNOWN_MISSES = {(r"(1,2)", r"\{1,2\}")}


@pytest.mark.parametrize("gold,prediction,want", EQUIVALENCE)
def test_equivalence_table(gold, prediction, want):
    """docs/answer-checking.md reports how often each checker agrees with these verdicts."""
    assert m.is_correct(m.normalize(prediction), m.normalize(gold)) is (want != ((gold, prediction) in KNOWN_MISSES))
    assert all(m.normalize(m.normalize(x)) == m.normalize(x) for x in (gold, prediction))  # stored answers re-read


@pytest.mark.parametrize(
    "prediction,gold,want",
    [
        ("\\frac{3}{4}", "\\frac34", True),
        ("0.75", "\\frac{3}{4}", True),
        ("3/4", "\\dfrac{3}{4}", True),
        ("1,000", "1000", True),
        ("\\$5.00", "5", True),
        ("\\text{(B)}", "(B)", True),
        ("x = 4", "4", True),
        ("\\frac{3}{5}", "\\frac{3}{4}", False),
        ("(1,2)", "(2,1)", False),
        (None, "4", False),
        ("", "4", False),
    ],
)
def test_scoring(prediction, gold, want):
    assert m.is_correct(prediction, gold) is want


def test_cheap_verdicts_do_not_call_math_verify():
    """Same string or two rationals: decided without math-verify (a 5,000-question run stays fast)."""
    before = m._verified.cache_info()
    assert m.is_correct("\\dfrac{6}{8}", "\\frac{3}{4}") and not m.is_correct("17", "71")
    assert m.is_correct("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}")
    after = m._verified.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)
    assert m.is_correct("\\sqrt{3}+2", "2+\\sqrt{3}")  # undecided by the normaliser: math-verify's turn
    assert m._verified.cache_info().misses + m._verified.cache_info().hits > after.misses + after.hits


_SYMPY_NUMBER = re.compile(r"(?:Integer|Float|Rational) \((?:'[\d.eE+-]+'|[\d.eE+-]+) ?\)")


def test_never_evaluates_text(monkeypatch):
    """No model text reaches eval: only math-verify's LaTeX grammar reads answers; sympy builds the digit tokens
    it finds with its own Number("12") (an eval of "Integer (12 )"), nothing else is evaluated."""
    m.math_verify_equal("1", "1")  # imports done before the spy
    seen = []
    real_eval = builtins.eval
    monkeypatch.setattr(builtins, "eval", lambda code, *a, **k: (seen.append(code), real_eval(code, *a, **k))[1])
    m._verified.cache_clear()
    m._parsed.cache_clear()
    assert not m.is_correct("__import__('os').system('echo hi')", "0")
    assert not m.is_correct("2**3", "8") and not m.is_correct("x**2", "x^2")  # Python syntax is not LaTeX
    assert m.is_correct("2^3", "8") and m.is_correct("2+2", "4")  # LaTeX arithmetic is equal in value
    assert m.is_correct("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}")
    assert seen and all(isinstance(c, str) and _SYMPY_NUMBER.fullmatch(c) for c in seen), seen
    assert m.states_answer("Hence $x = \\boxed{4}$.") and not m.states_answer("Subtract 3 from both sides.")


def test_math_verify_never_blocks():
    """Adversarial answers: a time limit per parse and comparison, a length cap, no alarm off the main thread."""
    m._verified.cache_clear()
    m._parsed.cache_clear()
    start = time.perf_counter()
    # the LaTeX parser backtracks for seconds on a cold grammar cache (a warm one, later in a run, reads it in
    # time): wrong either way, so only the time bound below is what is tested
    assert not m.is_correct("(" * 40 + "2" + ")" * 40, "1")
    assert not m.is_correct("10^{10^{10}}", "1")  # would compute a 10-billion-digit number
    assert time.perf_counter() - start < 4 * m.MATH_VERIFY_TIMEOUT_S + 2
    assert not m.is_correct("1+" * 200 + "1", "201")  # over MATH_VERIFY_MAX_CHARS: not parsed
    got = []
    worker = threading.Thread(target=lambda: got.append(m.math_verify_equal("2+\\sqrt{3}", "\\sqrt{3}+2")))
    worker.start()
    worker.join()
    assert got == [False] and m.math_verify_equal("2+\\sqrt{3}", "\\sqrt{3}+2")  # the main thread checks

"""Rationale-extraction prompts, written in this project's own words with the structure of
rationalyst.md 3.2 and 3.3:
  reasoning data sets: system + 7 few-shot pairs (3 GSM8K, 2 ECQA, 1 MATH, 1 MMLU-Pro) + document
  web text:            system + 3 web + 2 ECQA + 2 GSM8K pairs + document
Each pair is (original text, the same text with <BOT>rationale<EOT> spans inserted).
"""

from __future__ import annotations

import re

SYSTEM_DATASETS = (
    "You will be given a text. Rewrite it exactly as it is, but insert rationales: the unstated reasoning a "
    "reader needs in order to anticipate what comes next. Put each rationale between <BOT> and <EOT>, and "
    "close every <BOT> with exactly one <EOT>. A rationale must help predict the text that follows it and "
    "must not repeat what was already said. Do not change the original text in any way."
)

SYSTEM_WEB = (
    "You will be given a passage from the web. Rewrite it exactly as it is, and after each sentence insert a "
    "rationale between <BOT> and <EOT>: the unstated reasoning that helps predict the next sentence. A "
    "rationale must not restate information from the preceding text. Close every <BOT> with exactly one "
    "<EOT>. Do not change the original text in any way."
)


def _annotated(text: str, rationales: list[str]) -> tuple[str, str]:
    """Few-shot pair from a text with {r} slots: (original, annotated)."""
    original = re.sub(r"\n[ \t]*\{r\}(?=\n)| ?\{r\}", "", text)  # a slot on its own line goes with its line
    parts = text.split("{r}")
    assert len(parts) == len(rationales) + 1, "one rationale per slot"
    annotated = parts[0] + "".join(f"<BOT>{r}<EOT>{p}" for r, p in zip(rationales, parts[1:]))
    return original, annotated


GSM8K_SHOTS = [
    _annotated(
        "Question: A baker makes 24 muffins in the morning and 18 in the afternoon. She sells 30 of them. "
        "How many muffins are left?\nAnswer: {r} She makes 24+18=<<24+18=42>>42 muffins in total.\n{r} "
        "After selling 30, she has 42-30=<<42-30=12>>12 muffins left.\n{r} #### 12",
        [
            "First find how many muffins she baked in the whole day.",
            "Now take away the muffins she sold.",
            "The muffins left are the answer.",
        ],
    ),
    _annotated(
        "Question: Leo reads 15 pages a day. His book has 120 pages and he has already read 45. How many "
        "more days does he need to finish it?\nAnswer: {r} He has 120-45=<<120-45=75>>75 pages left.\n{r} "
        "At 15 pages a day, he needs 75/15=<<75/15=5>>5 days.\n{r} #### 5",
        [
            "We need the pages he still has to read.",
            "Divide the remaining pages by his daily pace.",
            "The number of days is the answer.",
        ],
    ),
    _annotated(
        "Question: A school buys 6 boxes of pencils with 12 pencils in each box. Each pencil costs $0.25. "
        "How much does the school spend?\nAnswer: {r} The school buys 6*12=<<6*12=72>>72 pencils.\n{r} "
        "They cost 72*0.25=$<<72*0.25=18>>18.\n{r} #### 18",
        [
            "Count the pencils first.",
            "Multiply the number of pencils by the price of one.",
            "The total cost is the answer.",
        ],
    ),
]

ECQA_SHOTS = [
    _annotated(
        "Question: Where would you keep milk so that it stays cold?\nChoices: A - cupboard B - refrigerator "
        "C - oven D - shelf E - backpack\nAnswer: {r} A cupboard is at room temperature. {r} A refrigerator "
        "keeps food cold. {r} An oven heats food. {r} A shelf is at room temperature. {r} A backpack is not "
        "cooled. {r} The answer is B",
        [
            "Check choice A: does a cupboard keep things cold?",
            "Check choice B: a refrigerator.",
            "Check choice C: an oven.",
            "Check choice D: a shelf.",
            "Check choice E: a backpack.",
            "Only the refrigerator keeps milk cold, so B is the answer.",
        ],
    ),
    _annotated(
        "Question: What do people usually do when they feel very tired?\nChoices: A - run B - sleep "
        "C - shout D - cook E - swim\nAnswer: {r} Running uses up energy. {r} Sleeping restores energy. "
        "{r} Shouting does not help with tiredness. {r} Cooking is work. {r} Swimming is exercise. "
        "{r} The answer is B",
        [
            "Check choice A: running.",
            "Check choice B: sleeping.",
            "Check choice C: shouting.",
            "Check choice D: cooking.",
            "Check choice E: swimming.",
            "Tired people want to restore energy, so B is the answer.",
        ],
    ),
]

MATH_SHOT = _annotated(
    "Question: What is the sum of the solutions of $x^2 - 5x + 6 = 0$?\nAnswer: {r} The equation factors as "
    "$(x-2)(x-3) = 0$. {r} So the solutions are $x = 2$ and $x = 3$. {r} Their sum is $2 + 3 = \\boxed{5}$.",
    [
        "Try to factor the quadratic into two linear factors.",
        "Each factor set to zero gives a solution.",
        "Add the two solutions.",
    ],
)

MMLU_PRO_SHOT = _annotated(
    "Question: Which gas makes up most of Earth's atmosphere?\nChoices: A - oxygen B - carbon dioxide "
    "C - nitrogen D - argon\nAnswer: Let's think step by step. {r} Dry air is about 78% nitrogen and 21% oxygen. "
    "{r} Argon and carbon dioxide are only small fractions. {r} The answer is (C).",
    [
        "Recall the composition of air by volume.",
        "Compare the remaining options with these shares.",
        "Nitrogen has the largest share.",
    ],
)

WEB_SHOTS = [
    _annotated(
        "The library will close for renovation on Monday. {r} Books can still be returned through the drop "
        "box by the main entrance. {r} The work is expected to take three weeks. {r} During that time, the "
        "community center will host a small reading room.",
        [
            "Readers will wonder what to do with borrowed books.",
            "Next the notice will say how long the closure lasts.",
            "A closure this long suggests a temporary alternative.",
        ],
    ),
    _annotated(
        "def read_config(path):\n    if not os.path.exists(path):\n        return {}\n    {r}\n    with "
        "open(path) as fh:\n        data = json.load(fh)\n    {r}\n    return data",
        [
            "A missing file gives an empty config; otherwise the file must be read.",
            "The parsed data is what the function gives back.",
        ],
    ),
    _annotated(
        "What is 7 times 8? {r} 56\nWhat is 144 divided by 12? {r} 12\nWhat is 15 plus 27? {r} 42",
        ["Multiply 7 by 8.", "Divide 144 by 12.", "Add 15 and 27."],
    ),
]

# the web prompt's GSM8K pairs end with a rationale announcing the final answer (rationalyst.md 3.3)
GSM8K_WEB_SHOTS = [
    (
        orig,
        ann.replace(
            "<BOT>The muffins left are the answer.<EOT>", "<BOT>We can now give the final answer.<EOT>"
        ).replace("<BOT>The number of days is the answer.<EOT>", "<BOT>We can now give the final answer.<EOT>"),
    )
    for orig, ann in GSM8K_SHOTS[:2]
]


def _messages(system: str, shots: list[tuple[str, str]], document: str) -> list[dict]:
    messages = [{"role": "system", "content": system}]
    for original, annotated in shots:
        messages += [{"role": "user", "content": original}, {"role": "assistant", "content": annotated}]
    return messages + [{"role": "user", "content": document}]


def datasets_prompt(document: str) -> list[dict]:
    return _messages(SYSTEM_DATASETS, GSM8K_SHOTS + ECQA_SHOTS + [MATH_SHOT, MMLU_PRO_SHOT], document)


def web_prompt(document: str) -> list[dict]:
    return _messages(SYSTEM_WEB, WEB_SHOTS + ECQA_SHOTS + GSM8K_WEB_SHOTS, document)


# ----------------------------------------------------------------------------- per-step mode
# An extension for small extractors (see extract_rationales --mode per_step): the stage splits the
# document into steps itself and asks for one rationale per position. The model sees only the text
# so far, never the next step, so a rationale cannot simply copy what it is scored on (a small model
# shown the next step copies it, and a copy trivially "helps predict" it). The examples are the
# (preceding, rationale) parts of the pairs above.

SYSTEM_STEP = (
    "You will be given the beginning of a text. Write the rationale for what comes next: the unstated "
    "reasoning a reader needs in order to anticipate the next step. Write one short sentence."
)
STEP_RE = re.compile(r"(?<=[.!?])[ \t]+(?=[A-Z0-9\"'(#$])|(?<=\n)")


def split_steps(text: str) -> list[str]:
    """Sentences and lines, each keeping its trailing whitespace: "".join(steps) == text."""
    pieces, start = [], 0
    for m in STEP_RE.finditer(text):
        end = m.end()
        if end > start and text[start:end].strip():
            pieces.append(text[start:end])
            start = end
    if text[start:].strip() or not pieces:
        pieces.append(text[start:])
    elif pieces:
        pieces[-1] += text[start:]
    return pieces


def step_user(preceding: str) -> str:
    return f"Text so far:\n{preceding.strip()}"


def _step_examples() -> list[tuple[str, str]]:
    from common.rationales import split_triples

    examples = []
    for _, annotated in (GSM8K_SHOTS[0], ECQA_SHOTS[0], WEB_SHOTS[0]):
        for t in split_triples(annotated).triples[:1]:
            examples.append((step_user(t.preceding), t.rationale))
    return examples


def step_prompt(preceding: str) -> list[dict]:
    return _messages(SYSTEM_STEP, _step_examples(), step_user(preceding))

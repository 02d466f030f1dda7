"""Multiple-choice answer extraction (ECQA, ARC-Challenge, ProofWriter, MMLU-Pro, HellaSwag).

Fixes the reference (rationalyst.md 6.4): "(B)", "B." and "B)" are accepted, not only a bare
first token; and when no letter can be found the answer is None (wrong), never a random letter.
"""

from __future__ import annotations

import re

_LETTER = r"\(?([A-{last}])\)?(?=$|[\s.,:;!)\]*])"


def _patterns(letters: str) -> tuple[re.Pattern, re.Pattern]:
    letter = _LETTER.format(last=letters[-1])
    strict = re.compile(r"answer is[:\s]*\**\s*" + letter, re.IGNORECASE)
    loose = re.compile(r"(?<![A-Za-z])\(([A-{last}])\)|(?<![A-Za-z'])([A-{last}])[.)](?=\s|$)".format(last=letters[-1]))
    return strict, loose


def extract_choice(text: str, letters: str = "ABCDE", mode: str = "flexible") -> str | None:
    """strict: the letter after "the answer is" (last such mention). flexible: strict, else the last
    "(X)" / "X." / "X)". None when nothing matches."""
    strict, loose = _patterns(letters)
    found = strict.findall(text)
    if found:
        return found[-1].upper()
    if mode == "strict":
        return None
    found = [a or b for a, b in loose.findall(text)]
    return found[-1] if found else None

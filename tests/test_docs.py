"""The documentation holds together: a short README, links that resolve, spec citations that exist.

Fast, no models. Three checks:
  * README.md has at most 200 lines;
  * every relative link `[text](path)` / `[text](path#anchor)` in README.md and docs/**/*.md
    points at an existing file or folder, and an anchor into a .md file names one of its
    headings (GitHub's rule: lower-case, spaces to '-', punctuation other than '-' and '_'
    dropped; a repeated heading gets '-1', '-2', ...);
  * every citation of the two specifications (the spec file's name, then a section number,
    as the code writes them) in the repository's .py/.md/.yaml/.sh/.sbatch files names a
    section that is a heading of docs/specs/<name>.md.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SPECS = DOCS / "specs"
README_MAX_LINES = 200

FENCE_RE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN_RE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
LINK_RE = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING_RE = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
NUM = r"\d+(?:\.\d+)*"
# the spec's name, optional "§" or "section(s)", then one number or a list / range of them
CITE_RE = re.compile(
    r"\b(rationalyst|refiner)\.md(?:\s*§\s*|\s+sections?\s+|\s+)"
    rf"({NUM}(?:\s*(?:,|–|-|and)\s*§?\s*{NUM})*)"
)
SECTION_RE = re.compile(rf"^(?:§\s*)?({NUM})\.?(?:\s|$)")
SCANNED = {".py", ".md", ".yaml", ".sh", ".sbatch"}
SKIP_DIRS = {
    ".git",
    ".venv",
    ".venv-vllm",
    "node_modules",
    "outputs",
    "runs",
    "logs",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
}


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def strip_code(text: str) -> str:
    """Markdown without fenced blocks and code spans (links there are examples, not links)."""
    return CODE_SPAN_RE.sub("", FENCE_RE.sub("", text))


def heading_text(raw: str) -> str:
    """A heading's text as GitHub shows it: a link keeps its text; backticks and emphasis go."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", raw)
    return re.sub(r"[`*]", "", text)


def github_anchor(heading: str) -> str:
    text = heading_text(heading).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for raw in HEADING_RE.findall(FENCE_RE.sub("", path.read_text(encoding="utf-8"))):
        base = github_anchor(raw)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    return LINK_RE.findall(strip_code(path.read_text(encoding="utf-8")))


def repo_files() -> list[Path]:
    """The repository's scanned files, minus docs/specs (the cited pages) and this file (its examples)."""
    out = []
    for root, dirs, files in os.walk(REPO):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and here / d != SPECS)
        out += [here / f for f in sorted(files) if Path(f).suffix in SCANNED and here / f != Path(__file__).resolve()]
    return out


def citations(text: str) -> list[tuple[str, str]]:
    return [(name, n) for name, nums in CITE_RE.findall(text) for n in re.findall(NUM, nums)]


def spec_sections(name: str) -> set[str]:
    path = SPECS / f"{name}.md"
    text = FENCE_RE.sub("", path.read_text(encoding="utf-8")) if path.exists() else ""
    return {m.group(1) for h in HEADING_RE.findall(text) if (m := SECTION_RE.match(heading_text(h).strip()))}


# ----------------------------------------------------------------------------- helpers tested


def test_github_anchor_rule():
    assert github_anchor("Running on a Slurm cluster (`slurm/`)") == "running-on-a-slurm-cluster-slurm"
    assert github_anchor("`python -m sampling.prefilter` (§2)") == "python--m-samplingprefilter-2"
    assert github_anchor('4.2 Scoring (the "new method")') == "42-scoring-the-new-method"
    assert github_anchor("snake_case and dash-ed") == "snake_case-and-dash-ed"


def test_citation_pattern():
    assert citations("see rationalyst.md §4.2 and refiner.md 1.2, 2.5, 8.3.") == [
        ("rationalyst", "4.2"),
        ("refiner", "1.2"),
        ("refiner", "2.5"),
        ("refiner", "8.3"),
    ]
    assert citations("(rationalyst.md 6.2-6.3, MATH)") == [("rationalyst", "6.2"), ("rationalyst", "6.3")]
    assert citations("rationalyst.md sections 2 and 3.2") == [("rationalyst", "2"), ("rationalyst", "3.2")]
    assert citations("refiner.md 9.1.10)") == [("refiner", "9.1.10")]
    assert citations("refiner.md 8.4: 100 test stories, 3 judges") == [("refiner", "8.4")]


# ----------------------------------------------------------------------------- the checks


def test_readme_is_short():
    n = len((REPO / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES}); move detail into docs/"


def test_docs_pages_exist():
    assert (DOCS / "index.md").exists()
    assert (SPECS / "rationalyst.md").exists() and (SPECS / "refiner.md").exists()


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path):
    broken = []
    for target in links(page):
        if re.match(r"^(https?:|mailto:)", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file or folder")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}:\n  " + "\n  ".join(broken)


def test_spec_citations_name_existing_sections():
    sections = {name: spec_sections(name) for name in ("rationalyst", "refiner")}
    missing = []
    for path in repo_files():
        for name, number in citations(path.read_text(encoding="utf-8", errors="replace")):
            if number not in sections[name]:
                missing.append(f"{path.relative_to(REPO)}: {name}.md {number}")
    assert not missing, "citations of sections missing from docs/specs/:\n  " + "\n  ".join(sorted(set(missing)))


def pipeline_commands(text: str) -> list[str]:
    """Every `... slurm/pipeline.sh ...` command line of a page (code spans and blocks), with its
    environment prefix."""
    found = re.findall(r"`([^`\n]*slurm/pipeline\.sh[^`\n]*)`", text)
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        found += re.findall(r"^(.*slurm/pipeline\.sh.*)$", block.replace("\\\n", " "), re.M)
    return found


@pytest.mark.parametrize("page", ["README.md", "docs/paper-tables.md", "docs/results.md"])
def test_table_commands_name_real_pipelines_knobs_and_recipes(page):
    """The commands that produce the papers' tables: a pipeline that exists, variables the Slurm files read,
    recipe files that exist."""
    slurm_text = "\n".join(p.read_text() for p in (REPO / "slurm").rglob("*") if p.is_file())
    pipelines = set(re.findall(r"^  (\w+)\) pipelines=", (REPO / "slurm" / "pipeline.sh").read_text(), re.M))
    assert {"rationalyst", "refiner", "refiner_supervised", "sft", "all"} <= pipelines
    commands = pipeline_commands((REPO / page).read_text())
    assert commands, page
    for command in commands:
        after = command.split("slurm/pipeline.sh", 1)[1].split()
        if not after or after[0].startswith(("`", "submits")):
            continue  # the script named in prose
        assert set(after[0].split("|")) <= pipelines, f"{page}: {command}"
        for var in re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]+)=", command.split("slurm/pipeline.sh", 1)[0]):
            generic = var.endswith(("_ARGS", "_ARRAY"))  # <STAGE>_ARGS / <STAGE>_ARRAY, read by name (common.sh)
            assert generic or re.search(rf"\${{?{var}\b", slurm_text), f"{page}: {var} is read nowhere"
        for recipe in re.findall(r"configs/[\w/.-]+\.yaml", command):
            assert (REPO / recipe).is_file(), f"{page}: {recipe}"

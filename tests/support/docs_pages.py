"""Reading the documentation as the tests check it: its pages, their code blocks and inline code, and the
`shortinterest` command lines they show."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.crawl import REPO_ROOT

DOCS = REPO_ROOT / "docs"
GENERATED = DOCS / "generated"
# `<!-- docs-example: skip (why) -->` or `<!-- docs-example: may be empty (why) -->` on the line before a block.
_MARKER = re.compile(r"<!--\s*docs-example:\s*(?P<marker>skip|may be empty)\b.*-->")
_FENCE = re.compile(r"^\s*```\s*(?P<language>[\w-]*)")
_INLINE = re.compile(r"`([^`\n]+)`")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Block:
    """A fenced code block: where it is, its language, its text and the marker before it."""

    page: Path
    line: int
    language: str
    text: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO_ROOT)}:{self.line}"


def pages() -> list[Path]:
    """Every hand-written page and README.md (the generated fragments are checked against the code instead)."""
    return [REPO_ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if GENERATED not in p.parents)]


def code_blocks(page: Path) -> list[Block]:
    """The page's fenced code blocks, in order."""
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    start: int | None = None
    for number, line in enumerate(lines, 1):
        fence = _FENCE.match(line)
        if fence and start is None:
            start, language = number, fence["language"]
        elif fence and start is not None:
            before = _MARKER.search(lines[start - 2]) if start >= 2 else None
            text = "\n".join(lines[start : number - 1])
            blocks.append(Block(page, start, language, text, before["marker"] if before else None))
            start = None
    return blocks


def inline_code(page: Path) -> list[str]:
    """The inline code spans outside fenced blocks, with table-escaped pipes unescaped."""
    text, inside = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            inside = not inside
        elif not inside:
            text.append(line)
    return [span.replace("\\|", "|") for span in _INLINE.findall("\n".join(text))]


def shown_commands(text: str) -> Iterator[tuple[str, list[str]]]:
    """Each `shortinterest COMMAND ...` the text runs: the command and the flags given to it."""
    for line in text.splitlines():
        line = re.split(r"(?:^|\s)#", line)[0]
        for segment in re.split(r"&&|\|\||;", line):
            tokens = segment.split()
            while tokens and _ASSIGNMENT.match(tokens[0]):
                tokens.pop(0)
            # `shortinterest COMMAND --help` names no command: placeholders are upper case.
            if len(tokens) > 1 and tokens[0].rsplit("/", 1)[-1] == "shortinterest" and not tokens[1].isupper():
                flags = [t.strip("[]").split("=")[0] for t in tokens[2:] if t.strip("[").startswith("-")]
                yield tokens[1], flags


def everything_shown(page: Path) -> Iterator[tuple[str, list[str]]]:
    """The command lines of the page's code blocks and inline code."""
    for block in code_blocks(page):
        yield from shown_commands(block.text)
    for span in inline_code(page):
        yield from shown_commands(span)

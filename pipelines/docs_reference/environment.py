"""The configuration reference: every environment variable, read from `pipelines/config.py`'s docstring.

That docstring is where every variable the product reads is defined; the tests check that the code reads
no variable it leaves out and that the docs name none it does not list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines import config
from pipelines.docs_reference import HEADER

# The prefixes of the product's own variables (Dagster's own, DAGSTER_*, are documented by hand).
VARIABLE = re.compile(r"\b(?:OPEND|SHORTINTEREST)_[A-Z0-9_]*[A-Z0-9]\b")
_ENTRY = re.compile(r"^(?P<names>[A-Z][A-Z0-9_]+(?:, [A-Z][A-Z0-9_]+)*)\s{2,}(?P<text>\S.*)$")
_DEFAULT = re.compile(r"\s*\(default:? (?P<default>[^()]*(?:\([^()]*\)[^()]*)*)\)")


@dataclass(frozen=True, slots=True)
class Variable:
    """One entry of the docstring: one or more variables sharing a meaning."""

    names: tuple[str, ...]
    meaning: str
    default: str | None


@dataclass(frozen=True, slots=True)
class Section:
    """Variables under one heading of the docstring (the first has none)."""

    title: str
    variables: tuple[Variable, ...]


def sections(doc: str | None = None) -> list[Section]:
    """The docstring's entries: `NAME  meaning`, indented continuation lines, and `Heading:` lines."""
    lines = (config.__doc__ if doc is None else doc or "").splitlines()
    body = lines[lines.index("") + 1 :] if "" in lines else []  # the first paragraph is the summary
    found: list[tuple[str, list[tuple[str, list[str]]]]] = [("", [])]
    for line in body:
        entry = _ENTRY.match(line)
        if entry:
            found[-1][1].append((entry["names"], [entry["text"].strip()]))
        elif line[:1].isspace() and line.strip() and found[-1][1]:
            found[-1][1][-1][1].append(line.strip())
        elif line.strip():
            found.append((line.strip().removesuffix(":"), []))
    return [Section(title, tuple(_variable(names, parts) for names, parts in entries)) for title, entries in found]


def _variable(names: str, parts: list[str]) -> Variable:
    text = " ".join(parts)
    default = _DEFAULT.search(text)
    meaning = _DEFAULT.sub("", text, count=1).strip() if default else text
    return Variable(tuple(names.split(", ")), meaning, default["default"].strip() if default else None)


def documented_names(doc: str | None = None) -> set[str]:
    """Every variable the docstring defines."""
    return {name for section in sections(doc) for v in section.variables for name in v.names}


def as_code(text: str) -> str:
    """Variable names as code."""
    return VARIABLE.sub(lambda m: f"`{m[0]}`", text)


def cell(text: str) -> str:
    """Text safe in a table cell."""
    return text.replace("|", "\\|")


def _default(text: str) -> str:
    """A single value as code (`30/30`); a phrase ("the packaged demo watchlist.yaml") as text."""
    return f"`{text}`" if " " not in text and not VARIABLE.fullmatch(text) else cell(as_code(text))


def render(doc: str | None = None) -> str:
    """The fragment: one table per docstring section."""
    out = [HEADER.format(source="pipelines/config.py")]
    for section in sections(doc):
        if not section.variables:
            continue
        if section.title:
            out.append(f"{as_code(section.title)}:\n\n")
        out.append("| variable | default | meaning |\n|---|---|---|\n")
        for v in section.variables:
            names = ", ".join(f"`{name}`" for name in v.names)
            default = "unset" if v.default is None else _default(v.default)
            out.append(f"| {names} | {default} | {cell(as_code(v.meaning))} |\n")
        out.append("\n")
    return "".join(out).rstrip("\n") + "\n"

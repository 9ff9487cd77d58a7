"""The command-line reference: every `shortinterest` command, its usage, arguments and help, from the parser.

The texts are the parser's own, formatted as `--help` formats them, so the page and `--help` say the same.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from pipelines.cli import COMMANDS, build_parser
from pipelines.docs_reference import HEADER
from pipelines.docs_reference.environment import as_code, cell

# Usage lines wrap at a fixed width, so the page does not depend on the terminal it was generated in.
WIDTH = 100


class _FixedWidth(argparse.HelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=WIDTH)


@dataclass(frozen=True, slots=True)
class Argument:
    """One argument as `--help` lists it: `-o FILE, --output FILE` and its expanded help."""

    invocation: str
    help: str
    flags: tuple[str, ...]


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each command's parser, wired exactly as `shortinterest COMMAND` wires it."""
    parsers: dict[str, argparse.ArgumentParser] = {}
    for name in COMMANDS:
        sub = _subcommands(build_parser([name]))[name]
        sub.formatter_class = _FixedWidth
        parsers[name] = sub
    return parsers


def top_parser() -> argparse.ArgumentParser:
    parser = build_parser([])
    parser.formatter_class = _FixedWidth
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def groups(parser: argparse.ArgumentParser) -> list[tuple[str, list[Argument]]]:
    """The parser's argument groups with their arguments, `-h` left out (every command has it)."""
    formatter = parser._get_formatter()
    found: list[tuple[str, list[Argument]]] = []
    for group in parser._action_groups:
        arguments = [
            Argument(
                formatter._format_action_invocation(action),
                formatter._expand_help(action) if action.help else "",
                tuple(action.option_strings),
            )
            for action in group._group_actions
            if not isinstance(action, argparse._HelpAction) and action.help != argparse.SUPPRESS
        ]
        if arguments:
            found.append((group.title or "", arguments))
    return found


def flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of the parser but `-h`/`--help`."""
    return {flag for _, arguments in groups(parser) for argument in arguments for flag in argument.flags}


def _section(name: str, parser: argparse.ArgumentParser) -> str:
    out = [f"## `shortinterest {name}`\n\n{parser.description}\n\n"]
    out.append(f"```text\n{parser.format_usage().strip()}\n```\n\n")
    for title, arguments in groups(parser):
        out.append(f"{title[:1].upper()}{title[1:]}:\n\n| argument | meaning |\n|---|---|\n")
        out += [f"| `{a.invocation}` | {cell(a.help)} |\n" for a in arguments]
        out.append("\n")
    if parser.epilog:
        out.append(f"{as_code(parser.epilog)}\n\n")
    return "".join(out)


def render() -> str:
    """The fragment: the top-level usage and command list, then one section per command."""
    top = top_parser()
    out = [HEADER.format(source="the argument parser (pipelines/cli.py and each command's add_arguments)")]
    about = f"{top.description} {as_code(top.epilog or '')}"
    out.append(f"```text\n{top.format_usage().strip()}\n```\n\n{about}\n\n")
    out.append("| command | what it does |\n|---|---|\n")
    out += [f"| [`{name}`](#shortinterest-{name}) | {cell(help_text)} |\n" for name, (_, help_text) in COMMANDS.items()]
    out.append("\n")
    out += [_section(name, parser) for name, parser in command_parsers().items()]
    return "".join(out).rstrip("\n") + "\n"

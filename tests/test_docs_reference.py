"""The documentation and the code say the same: environment variables, commands, flags and `--help` texts.

The reference pages are generated from the code (pipelines/docs_reference); these tests fail when a committed one
falls behind, when the code reads a variable or has a flag the docs lack, or when a page names one that is gone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines import config
from pipelines.cli import COMMANDS, main
from pipelines.docs_reference import COMMANDS_PAGE, ENVIRONMENT_PAGE, GENERATED_DIR, commands, environment, stale_pages
from pipelines.docs_reference.environment import VARIABLE
from tests.support.crawl import REPO_ROOT
from tests.support.docs_pages import everything_shown, pages

# Where the product reads its variables: its code and the services' environment file.
CODE = [*sorted((REPO_ROOT / "pipelines").rglob("*.py")), *sorted((REPO_ROOT / "proto_client").rglob("*.py"))]
CODE.append(REPO_ROOT / "deploy" / "shortinterest.env")
_SECTION = re.compile(r"^## `shortinterest (?P<name>[\w-]+)`$")
_ROW = re.compile(r"^\| `(?P<invocation>[^`]+)` \|")
_FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def _names(paths: list[Path]) -> dict[str, list[str]]:
    """Variable -> the files naming it."""
    found: dict[str, list[str]] = {}
    for path in paths:
        for name in set(VARIABLE.findall(path.read_text(encoding="utf-8"))):
            found.setdefault(name, []).append(str(path.relative_to(REPO_ROOT)))
    return found


def test_committed_reference_pages_are_what_the_code_generates() -> None:
    generated = {ENVIRONMENT_PAGE: environment.render(), COMMANDS_PAGE: commands.render()}
    assert stale_pages(generated) == [], "stale: run `python -m pipelines.docs_reference` (see docs/contributing)"


def test_every_variable_the_code_reads_is_documented_in_config() -> None:
    documented = environment.documented_names()
    undocumented = {name: files for name, files in _names(CODE).items() if name not in documented}
    assert undocumented == {}, "document these in pipelines/config.py's docstring"
    # And the docstring defines nothing the code does not read: config.py's code, docstring left out.
    code_of_config = Path(config.__file__).read_text(encoding="utf-8").replace(config.__doc__ or "", "")
    assert documented - set(VARIABLE.findall(code_of_config)) == set()


def test_every_variable_the_docs_name_is_defined() -> None:
    defined = environment.documented_names()
    test_variables = {n for n in _names(sorted((REPO_ROOT / "tests").rglob("*.py"))) if "_TEST_" in n}
    unknown = {name: files for name, files in _names(pages()).items() if name not in defined | test_variables}
    assert unknown == {}, "the docs name variables pipelines/config.py does not define"


def _page_flags() -> dict[str, set[str]]:
    """Command -> the flags the committed command-line page lists for it."""
    found: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in (GENERATED_DIR / COMMANDS_PAGE).read_text(encoding="utf-8").splitlines():
        if section := _SECTION.match(line):
            current = found.setdefault(section["name"], set())
        elif (row := _ROW.match(line)) and current is not None:
            current.update(_FLAG.findall(row["invocation"]))
    return found


def test_the_command_line_page_lists_every_command_and_flag_and_no_other() -> None:
    in_code = {name: commands.flags(parser) for name, parser in commands.command_parsers().items()}
    on_page = _page_flags()
    assert set(on_page) == set(in_code), "commands differ between the parser and docs/generated/commands.md"
    differences = {
        name: {"undocumented": sorted(in_code[name] - on_page[name]), "gone": sorted(on_page[name] - in_code[name])}
        for name in in_code
        if in_code[name] != on_page[name]
    }
    assert differences == {}, "flags differ: run `python -m pipelines.docs_reference`"


def test_pages_show_only_commands_and_flags_that_exist() -> None:
    parsers = commands.command_parsers()

    def known(command: str) -> set[str]:
        return commands.flags(parsers[command]) | {"-h", "--help"}

    wrong = [
        f"{page.relative_to(REPO_ROOT)}: shortinterest {command}"
        + ("" if command not in parsers else f" {' '.join(sorted(set(flags) - known(command)))}")
        for page in pages()
        for command, flags in everything_shown(page)
        if command not in parsers or not set(flags) <= known(command)
    ]
    assert wrong == [], "pages show commands or flags the parser does not have"


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_says_what_the_page_says(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([name, "--help"])
    assert exited.value.code == 0
    shown = _words(capsys.readouterr().out)
    parser = commands.command_parsers()[name]
    texts = [parser.description or "", parser.epilog or ""]
    texts += [argument.help for _, arguments in commands.groups(parser) for argument in arguments]
    section = commands.render().split(f"## `shortinterest {name}`\n", 1)[1].split("\n## ", 1)[0]
    for text in filter(None, texts):
        assert _words(text) in shown
        assert _words(environment.as_code(text)) in _words(section.replace("\\|", "|"))

"""`python -m pipelines.docs_reference [--database-url URL] [--check]`: write (or check) the generated pages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipelines.docs_reference import (
    COMMANDS_PAGE,
    ENVIRONMENT_PAGE,
    GENERATED_DIR,
    SCHEMA_PAGE,
    commands,
    environment,
    schema,
    stale_pages,
)
from pipelines.warehouse import create_engine_for, ensure_migrated, read_connection


def pages(database_url: str | None) -> dict[str, str]:
    """Every fragment the code generates; the schema's only given a migrated PostgreSQL warehouse."""
    found = {ENVIRONMENT_PAGE: environment.render(), COMMANDS_PAGE: commands.render()}
    if database_url:
        engine = create_engine_for(database_url)
        try:
            ensure_migrated(engine)
            with read_connection(engine) as conn:
                found[SCHEMA_PAGE] = schema.render(conn)
        finally:
            engine.dispose()
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.docs_reference", description=__doc__)
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="a PostgreSQL warehouse at the latest revision (`shortinterest migrate`): also generate "
        f"{SCHEMA_PAGE} from its comments",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming the stale pages")
    args = parser.parse_args(argv)
    generated = pages(args.database_url)
    if args.check:
        stale = stale_pages(generated)
        for name in stale:
            print(f"{GENERATED_DIR / name} is stale: run python -m pipelines.docs_reference", file=sys.stderr)
        return 1 if stale else 0
    GENERATED_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in generated.items():
        (GENERATED_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {GENERATED_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`shortinterest migrate`: bring the warehouse at SHORTINTEREST_DATABASE_URL to the latest schema."""

from __future__ import annotations

import argparse

from sqlalchemy.exc import SQLAlchemyError

from pipelines.config import ConfigError, Settings
from pipelines.failures import fail, first_line
from pipelines.warehouse.engine import create_engine_for, mask_url
from pipelines.warehouse.errors import WarehouseError
from pipelines.warehouse.migrate import current_revision, head_revision, upgrade


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "The database is SHORTINTEREST_DATABASE_URL (default: a SQLite file under .shortinterest/)."


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        engine = create_engine_for(settings.database_url)
    except (ConfigError, WarehouseError) as exc:
        return fail("migrate", str(exc), 2)
    database = mask_url(engine.url)
    try:
        before = current_revision(engine)
        head = head_revision()
        if before == head:
            print(f"warehouse {database} is already at the latest revision {head}")
            return 0
        after = upgrade(engine)
    except WarehouseError as exc:
        return fail("migrate", str(exc), 1)
    except SQLAlchemyError as exc:
        return fail("migrate", f"cannot migrate warehouse {database}: {first_line(exc)}", 1)
    finally:
        engine.dispose()
    print(f"migrated warehouse {database}: {before or '(empty)'} -> {after}")
    return 0

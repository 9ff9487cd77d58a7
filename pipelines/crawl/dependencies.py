"""The two shared dependencies of a load, as `Dependency` objects: a gateway and the warehouse.

Each gets a probe that costs nothing the budget counts: the gateway's is GetGlobalState (not
rate-limited, and it says whether the quote login is up), the warehouse's a `SELECT 1` on a fresh
connection. Loaders on one gateway share its Dependency; every loader shares the warehouse's.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from pipelines.crawl.outage import Dependency, OutagePolicy
from pipelines.crawl.retry import is_gateway_outage, is_warehouse_outage
from pipelines.warehouse import mask_url, read_connection
from proto_client.client import OpenDClient
from proto_client.errors import GatewayConnectionError, QuoteLoginError


def describe_gateway_outage(exc: BaseException, describe: Callable[[BaseException], str] = str) -> str:
    """The socket's own words for a failed connect ("connection refused"), without the how-to-start hint.

    The hint helps a first run that finds no gateway; a gateway that answered a moment ago is restarting.
    """
    cause = exc.__cause__
    if isinstance(exc, GatewayConnectionError) and isinstance(cause, OSError):
        if isinstance(cause, TimeoutError):
            return "connect timed out"
        if cause.strerror:
            return cause.strerror[0].lower() + cause.strerror[1:]
    return describe(exc)


def gateway_dependency(
    client: OpenDClient,
    policy: OutagePolicy,
    *,
    notify: Callable[[str], None] | None = None,
    describe: Callable[[BaseException], str] = str,
) -> Dependency:
    def probe() -> None:
        if not client.get_global_state().qot_logined:
            raise QuoteLoginError(f"the gateway at {client.endpoint} is not logged in to the quote server")

    return Dependency(
        f"the OpenD gateway at {client.endpoint}",
        is_outage=is_gateway_outage,
        probe=probe,
        policy=policy,
        notify=notify,
        describe=lambda exc: describe_gateway_outage(exc, describe),
    )


def warehouse_dependency(
    engine: sa.Engine,
    policy: OutagePolicy,
    *,
    notify: Callable[[str], None] | None = None,
    describe: Callable[[BaseException], str] = str,
) -> Dependency:
    def probe() -> None:
        with read_connection(engine) as conn:
            conn.execute(sa.text("SELECT 1"))

    return Dependency(
        f"the warehouse database {mask_url(engine.url)}",
        is_outage=is_warehouse_outage,
        probe=probe,
        policy=policy,
        notify=notify,
        describe=describe,
    )

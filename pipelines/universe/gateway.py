"""The client a resolution talks through: the first configured gateway, each listing call in its own bucket.

Watchlist groups belong to the account OpenD is logged in with, so `futu_groups:` are read from the first
gateway of OPEND_GATEWAYS (or OPEND_HOST/OPEND_PORT).
"""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.crawl.rate_limiter import listing_throttles
from pipelines.crawl.watchlist import Watchlist
from pipelines.universe.resolve import Resolution, resolve
from proto_client.client import OpenDClient


def resolution_client(settings: Settings, engine: sa.Engine) -> OpenDClient:
    gateway = settings.all_gateways[0]
    return OpenDClient(
        gateway.host,
        gateway.port,
        reply_timeout=settings.reply_timeout,
        rsa_key_file=settings.rsa_key_file,
        check_quote_login=True,
        listing_throttles=listing_throttles(engine, gateway.name, settings.listing_rate_limit),
    )


def resolve_watchlist(settings: Settings, engine: sa.Engine, watchlist: Watchlist) -> Resolution:
    """Resolve through a client of its own; connecting happens inside `resolve`, so a gateway that is down or
    not logged in is a GatewayResolutionError like any other refusal."""
    client = resolution_client(settings, engine)
    try:
        return resolve(client, watchlist)
    finally:
        client.close()

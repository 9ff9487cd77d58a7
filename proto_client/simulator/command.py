"""`shortinterest gateway --demo`: serve the simulated OpenD gateway until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from datetime import date
from pathlib import Path

from proto_client.encryption import KeyFileError, RsaKey
from proto_client.rate_limit import RateLimit
from proto_client.simulator.faults import CorruptMode, FaultPlan
from proto_client.simulator.listings import DEFAULT_MARKET_SIZE
from proto_client.simulator.options import DEFAULT_HOST, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_PORT, GatewayOptions
from proto_client.simulator.rate_window import parse_rate
from proto_client.simulator.server import GatewayServer

log = logging.getLogger("shortinterest.gateway")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text!r}")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _rate(text: str) -> RateLimit | None:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--demo", action="store_true", help="serve the built-in deterministic demo data (required for now)"
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s, loopback)")
    parser.add_argument(
        "--port", type=_count, default=DEFAULT_PORT, help="TCP port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--rate",
        type=_rate,
        default=RateLimit(30, 30.0),
        metavar="N/SECONDS|off",
        help="Qot_GetShortInterest limit over a sliding window, across all connections (default: 30/30)",
    )
    parser.add_argument(
        "--as-of",
        type=_day,
        default=None,
        metavar="YYYY-MM-DD",
        help="newest trade date served (default: today in each market's time zone)",
    )
    parser.add_argument(
        "--revision",
        type=_count,
        default=0,
        metavar="N",
        help="N > 0 revises the newest 2 rows of every code (default: 0)",
    )
    parser.add_argument(
        "--extra-codes", type=_count, default=0, metavar="N", help="add N synthetic codes (US.SYN0001, HK.89001, ...)"
    )
    parser.add_argument(
        "--keepalive-interval",
        type=_positive,
        default=DEFAULT_KEEPALIVE_INTERVAL,
        metavar="SECONDS",
        help="keepAliveInterval announced in the InitConnect reply (default: %(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="close connections that send nothing for this long (default: 0, never)",
    )
    parser.add_argument(
        "--lazy-end",
        action="store_true",
        help="after an exactly full last page, answer one more empty page with nextKey -1",
    )
    parser.add_argument(
        "--rsa-key",
        type=Path,
        default=None,
        metavar="FILE",
        help="require encrypted links with this PEM RSA private key, as OpenD configured with it does",
    )
    parser.add_argument(
        "--aes",
        choices=["auto", "ecb"],
        default="auto",
        help="with --rsa-key: AES-CBC when the client asks for it, else FTAES-ECB (auto); or always FTAES-ECB",
    )
    parser.add_argument(
        "--opaque-keys", action="store_true", help="hand out page keys as opaque tokens instead of timestamps"
    )
    parser.add_argument(
        "--notify-every",
        type=_count,
        default=0,
        metavar="N",
        help="push a Notify frame (proto 1003) before every Nth reply on a connection (default: 0, never)",
    )
    parser.add_argument(
        "--not-logged-in",
        action="store_true",
        help="act logged out of the quote server: qotLogined false, Qot_GetShortInterest refused",
    )
    parser.add_argument(
        "--refuse-init-connect",
        default=None,
        metavar="MESSAGE",
        help="refuse every InitConnect (proto 1001) with retType -1 and MESSAGE as retMsg, as OpenD refuses a "
        "client version it does not accept",
    )
    parser.add_argument(
        "--listing-rate",
        type=_rate,
        default=RateLimit(10, 30.0),
        metavar="N/SECONDS|off",
        help="limit of each listing call (3202 static info, 3205 plate, 3213 group, 3222 groups), one sliding "
        "window per call (default: 10/30)",
    )
    parser.add_argument(
        "--market-size",
        type=_count,
        default=DEFAULT_MARKET_SIZE,
        metavar="N",
        help="synthetic codes listed per market (HK 30000..., US XAAA...), besides the named ones "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--groups-file",
        type=Path,
        default=None,
        metavar="FILE",
        help='custom watchlist groups as JSON {"name": ["HK.00700", ...]}, read again on every request',
    )
    faults = parser.add_argument_group("fault injection (counts Qot_GetShortInterest requests globally)")
    faults.add_argument("--drop-every", type=_count, default=0, metavar="N", help="close the connection on every Nth")
    faults.add_argument("--delay", type=_seconds, default=0.0, metavar="SECONDS", help="sleep before replying")
    faults.add_argument(
        "--delay-every", type=_positive, default=1, metavar="N", help="apply --delay to every Nth (default: 1)"
    )
    faults.add_argument(
        "--corrupt", choices=[m.value for m in CorruptMode], default=None, help="send a malformed frame"
    )
    faults.add_argument(
        "--corrupt-every", type=_positive, default=1, metavar="N", help="apply --corrupt to every Nth (default: 1)"
    )
    faults.add_argument("--reject-every", type=_count, default=0, metavar="N", help="refuse every Nth as too frequent")
    faults.add_argument(
        "--loop-code", default=None, metavar="CODE", help="answer every page of CODE with its first page again"
    )
    parser.add_argument(
        "--stats-file", type=Path, default=None, metavar="PATH", help="rewrite request counters here as JSON"
    )
    parser.add_argument("--verbose", action="store_true", help="log every connection event")


def options_from_args(args: argparse.Namespace) -> GatewayOptions:
    corrupt = CorruptMode(args.corrupt) if args.corrupt else None
    return GatewayOptions(
        as_of=args.as_of,
        host=args.host,
        port=args.port,
        rate=args.rate,
        revision=args.revision,
        extra_codes=args.extra_codes,
        keepalive_interval=args.keepalive_interval,
        idle_timeout=args.idle_timeout,
        lazy_end=args.lazy_end,
        faults=FaultPlan(
            drop_every=args.drop_every,
            delay_seconds=args.delay,
            delay_every=args.delay_every,
            corrupt_mode=corrupt,
            corrupt_every=args.corrupt_every if corrupt else 0,
            reject_every=args.reject_every,
        ),
        stats_file=args.stats_file,
        rsa_key=RsaKey.load(args.rsa_key) if args.rsa_key is not None else None,
        force_ecb=args.aes == "ecb",
        opaque_keys=args.opaque_keys,
        notify_every=args.notify_every,
        qot_logined=not args.not_logged_in,
        loop_code=args.loop_code,
        refuse_init_connect=args.refuse_init_connect,
        listing_rate=args.listing_rate,
        market_size=args.market_size,
        groups_file=args.groups_file,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve(options: GatewayOptions) -> None:
    server = GatewayServer(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host, port = await server.start()
    rate = str(options.rate) if options.rate else "off"
    link = "plain" if options.rsa_key is None else f"encrypted, {'FTAES-ECB' if options.force_ecb else 'AES-CBC/ECB'}"
    as_of = options.as_of.isoformat() if options.as_of else "today in each market's time zone"
    print(
        f"listening on {host}:{port} (demo data as of {as_of}, "
        f"{len(server.book.codes)} codes, revision {options.revision}, rate {rate}, {link} link)",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await server.close()
        print("gateway stopped", flush=True)


def run(args: argparse.Namespace) -> int:
    if not args.demo:
        print(
            "shortinterest gateway: --demo is required: the simulated gateway serves demo data only "
            "(point OPEND_HOST/OPEND_PORT at a real OpenD for live data)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        options = options_from_args(args)
    except (ValueError, KeyFileError) as exc:
        print(f"shortinterest gateway: {exc}", file=sys.stderr)
        return 2
    if not _is_loopback(options.host):
        log.warning("binding %s: the demo gateway is reachable from other machines", options.host)
    try:
        asyncio.run(_serve(options))
    except OSError as exc:
        print(f"shortinterest gateway: cannot listen on {options.host}:{options.port}: {exc}", file=sys.stderr)
        return 1
    return 0

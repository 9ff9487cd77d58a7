"""Per-request latency of OpenDClient over encrypted links against a plain one, on simulated gateways.

Three gateway processes serve the same demo data: plain, encrypting in AES-CBC (what the client asks
for), and encrypting in FTAES-ECB (forced with `--aes ecb`). One client per gateway asks for the same
first pages (num=50), interleaved request by request and taking turns at going first, so drift on the
machine hits all three alike; three rounds of fresh gateways, each round starting a different one
first, and the figure is the median over rounds of the difference of medians. The gateway decrypts and
encrypts too, so the added time counts the cipher work at both ends of the link. Target: encryption adds
at most 0.2 ms a request. The cipher work alone (both ends, one request and its 50-row reply, in one
process) is reported beside it: it is what the end-to-end difference should come to on a quiet machine.

    .venv/bin/python bench/encryption_latency.py [--requests 300] [--warmup 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import date
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.client_latency import AS_OF, latency_summary, timed  # noqa: E402
from proto_client.client import OpenDClient  # noqa: E402
from proto_client.encryption import PacketCipher  # noqa: E402
from proto_client.messages import short_interest_request  # noqa: E402
from proto_client.pb import qot_get_short_interest_pb2  # noqa: E402
from proto_client.security import parse_code  # noqa: E402
from proto_client.simulator import replies  # noqa: E402
from proto_client.simulator.book import DemoBook  # noqa: E402
from proto_client.simulator.demo_data import demo_codes  # noqa: E402
from tests.support.gateway import GatewayProcess, start_gateway  # noqa: E402

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "encryption_latency.json"
TARGET_ADDED_MS = 0.2
AES_KEY, AES_IV = "0123456789abcdef", "fedcba9876543210"  # any 16 characters: the cost does not depend on them


def cipher_work_ms(rounds: int = 2000) -> dict[str, float]:
    """Milliseconds of AES work one request costs, both ends: encrypt and decrypt the request and its reply."""
    request = short_interest_request(parse_code("US.AAPL"), None, 50)
    book = DemoBook(date.fromisoformat(AS_OF))
    parsed = qot_get_short_interest_pb2.Request.FromString(request)
    reply = replies.short_interest(parsed, book, lazy_end=False).SerializeToString()

    def both_ends(cipher: PacketCipher) -> None:
        for _ in range(rounds):
            cipher.decrypt(cipher.encrypt(request))
            cipher.decrypt(cipher.encrypt(reply))

    ciphers = {"AES-CBC": PacketCipher(AES_KEY, AES_IV), "FTAES-ECB": PacketCipher(AES_KEY)}
    return {name: timed(partial(both_ends, cipher)) / rounds * 1000 for name, cipher in ciphers.items()}


def measure_round(
    links: dict[str, tuple[list[str], Path | None]], start_order: list[str], requests: int, warmup: int
) -> dict[str, list[float]]:
    """One round: a fresh gateway process per link, started in `start_order`, and interleaved requests."""
    codes = demo_codes()
    gateways: list[GatewayProcess] = []
    clients: dict[str, OpenDClient] = {}
    samples: dict[str, list[float]] = {name: [] for name in links}
    try:
        for name in start_order:
            gateway_args, client_key = links[name]
            gateways.append(gw := start_gateway(gateway_args))
            clients[name] = OpenDClient(gw.host, gw.port, rsa_key_file=client_key)
            clients[name].connect()
            assert clients[name].encryption == (None if client_key is None else name)
        names = list(links)
        for i in range(warmup + requests):
            code = codes[i % len(codes)]
            for name in names[i % len(names) :] + names[: i % len(names)]:
                elapsed = timed(partial(clients[name].get_short_interest_page, code, num=50))
                if i >= warmup:
                    samples[name].append(elapsed)
    finally:
        for client in clients.values():
            client.close()
        for gw in gateways:
            gw.stop()
    return samples


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="measured requests per link and round")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured requests per link first")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be at least 1 and --warmup at least 0")

    with tempfile.TemporaryDirectory() as folder:
        key = Path(folder) / "opend_rsa.pem"
        subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "1024"], check=True, capture_output=True)
        key.chmod(0o600)
        common = ["--rate", "off", "--as-of", AS_OF]
        links: dict[str, tuple[list[str], Path | None]] = {
            "plain": (common, None),
            "AES-CBC": ([*common, "--rsa-key", str(key)], key),
            "FTAES-ECB": ([*common, "--rsa-key", str(key), "--aes", "ecb"], key),
        }
        names = list(links)
        # Each link's gateway is a process of its own, and on a busy machine one process can be scheduled worse
        # than another for a whole round: every link's gateway is started first in one round, and the figure is
        # the median over rounds.
        rounds = [measure_round(links, names[r:] + names[:r], args.requests, args.warmup) for r in range(len(names))]

    samples = {name: [value for one in rounds for value in one[name]] for name in names}
    per_round_added = {
        name: [latency_summary(one[name])["median_ms"] - latency_summary(one["plain"])["median_ms"] for one in rounds]
        for name in ("AES-CBC", "FTAES-ECB")
    }
    summaries = {name: latency_summary(values) for name, values in samples.items()}
    work = cipher_work_ms()
    plain = summaries["plain"]["median_ms"]
    added = {name: statistics.median(values) for name, values in per_round_added.items()}
    worst = max(added.values())
    result: dict[str, object] = {
        "benchmark": "encryption_latency",
        "requests": args.requests,
        "warmup": args.warmup,
        "num": 50,
        "codes": demo_codes(),
        "links": summaries,
        "rounds": len(rounds),
        "added_median_ms": added,
        "added_median_ms_per_round": per_round_added,
        "ratio_median": {name: summaries[name]["median_ms"] / plain for name in added},
        "cipher_work_ms": work,
        "target_added_ms": TARGET_ADDED_MS,
        "meets_target": worst <= TARGET_ADDED_MS,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, summary in summaries.items():
        extra = f"  ({added[name]:+.3f} ms; cipher work {work[name]:.3f} ms)" if name in added else ""
        print(f"{name:10} median {summary['median_ms']:.3f} ms  mean {summary['mean_ms']:.3f} ms{extra}")
    print(
        f"encryption adds at most {worst:.3f} ms a request (median)  target <= {TARGET_ADDED_MS} ms  "
        f"{'met' if result['meets_target'] else 'NOT met'}\nwritten to {args.output}"
    )
    return result


if __name__ == "__main__":
    main()

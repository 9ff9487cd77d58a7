"""The shipped nginx site (deploy/nginx/shortinterest.conf) run for real on the loopback, with a test certificate
and test password files in place of the production ones, in front of webservers the test started.

The site is used as shipped except for the paths and ports below, each of which must be found in it: a site whose
lines moved on fails here instead of being tested half-templated.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.dagster_services import REPO_ROOT

SITE = REPO_ROOT / "deploy" / "nginx" / "shortinterest.conf"
# Production paths and ports in the site, and what the test puts in their place (keys of `ProxyFiles`/ports).
CERTIFICATE = "/etc/shortinterest/tls/fullchain.pem"
CERTIFICATE_KEY = "/etc/shortinterest/tls/privkey.pem"
OPERATORS = "/etc/shortinterest/htpasswd-operators"
VIEWERS = "/etc/shortinterest/htpasswd-viewers"
UI_UPSTREAM = "http://127.0.0.1:3000;"
READ_ONLY_UPSTREAM = "http://127.0.0.1:3001;"
HTTPS_LISTEN = "listen 443 ssl;"
READ_ONLY_LISTEN = "listen 8443 ssl;"
HTTP_LISTEN = "listen 80;"


def nginx_binary() -> str:
    """Debian's nginx; its absence fails the test with what to install (never a skip)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        raise AssertionError("nginx is not installed: `apt-get install -y nginx` (Debian's; .ci/run installs it)")
    return found


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost and its key, made with openssl."""
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return cert, key


def sha512_crypt_entry(user: str, password: str) -> str:
    """An htpasswd line as docs/operators/production.md makes one: `openssl passwd -6` (SHA-512 crypt, salted)."""
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password, check=True, capture_output=True, text=True
    ).stdout.strip()
    return f"{user}:{hashed}\n"


def sha1_entry(user: str, password: str) -> str:
    """An htpasswd line in nginx's `{SHA}` scheme, from the standard library alone (unsalted: tests only)."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}\n"


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@dataclass(frozen=True, slots=True)
class ProxyPorts:
    https: int
    read_only: int
    http: int
    ui_upstream: int
    read_only_upstream: int


def site_for_test(cert: Path, key: Path, operators: Path, viewers: Path, ports: ProxyPorts) -> str:
    """The shipped site with the test's files and loopback ports in place of the production ones."""
    text = SITE.read_text()
    replacements: Mapping[str, str] = {
        CERTIFICATE: str(cert),
        CERTIFICATE_KEY: str(key),
        OPERATORS: str(operators),
        VIEWERS: str(viewers),
        UI_UPSTREAM: f"http://127.0.0.1:{ports.ui_upstream};",
        READ_ONLY_UPSTREAM: f"http://127.0.0.1:{ports.read_only_upstream};",
        HTTPS_LISTEN: f"listen 127.0.0.1:{ports.https} ssl;",
        READ_ONLY_LISTEN: f"listen 127.0.0.1:{ports.read_only} ssl;",
        HTTP_LISTEN: f"listen 127.0.0.1:{ports.http};",
    }
    for production, test in replacements.items():
        assert production in text, f"{SITE} no longer has {production!r}; update tests/support/auth_proxy.py"
        text = text.replace(production, test)
    return text


def nginx_config(prefix: Path, site: Path) -> str:
    """A main nginx.conf for an unprivileged-looking instance under `prefix`, including only `site`."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Run as root (a container, CI), the workers would be `nobody` and could not read the test's password files.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""daemon off;
{user}pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix / "access.log"};
{temp}
    include {site};
}}
"""


def client_context(cert: Path) -> ssl.SSLContext:
    """A client that trusts the test certificate alone, and checks the host name against it."""
    return ssl.create_default_context(cafile=str(cert))


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0

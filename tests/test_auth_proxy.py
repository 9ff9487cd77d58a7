"""The authenticating proxy, run for real: Debian's nginx with the shipped site (deploy/nginx/shortinterest.conf,
a test certificate and test password files) in front of two real dagster-webservers on the loopback, the full UI
and the `--read-only` one, as the units in deploy/systemd/ start them.

Nothing answers without a login; with one, pages, GraphQL and the UI's websocket pass; the read-only UI refuses to
launch what the full one queues. The services start once for the module (a webserver takes seconds to load the
code location).
"""

from __future__ import annotations

import json
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from pipelines.orchestration.report import REPORT_JOB
from tests.support.auth_proxy import (
    ProxyPorts,
    basic_auth,
    client_context,
    listening,
    make_certificate,
    nginx_binary,
    nginx_config,
    sha1_entry,
    sha512_crypt_entry,
    site_for_test,
)
from tests.support.dagster_services import (
    REPO_ROOT,
    GraphQLError,
    ServiceGroup,
    Webserver,
    free_port,
    launch_job,
)
from tests.support.loader import wait_for

# One worker runs the whole module (ONE_WORKER_MODULES in conftest.py), so its proxy and webservers start once.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LOCATION = "shortinterest"  # workspace.yaml's location_name
OPERATOR = ("operator", "operator-secret")
VIEWER = ("viewer", "viewer-secret")
START_TIMEOUT = 180.0
# Pages of the UI, its server info, static files and the GraphQL endpoint: every one is behind the login.
PATHS = ("/", "/runs", "/assets", "/server_info", "/graphql", "/favicon.png", "/no/such/page")
VERSION_QUERY = "{ version }"
GRAPHQL_WS = Subprotocol("graphql-ws")  # the protocol of the UI's subscriptions


@dataclass(frozen=True, slots=True)
class Proxy:
    ports: ProxyPorts
    cert: Path
    services: ServiceGroup
    instance_home: Path

    @property
    def ui(self) -> str:
        return f"https://127.0.0.1:{self.ports.https}"

    @property
    def read_only_ui(self) -> str:
        return f"https://127.0.0.1:{self.ports.read_only}"

    def webserver(self, url: str, login: tuple[str, str] | None) -> Webserver:
        return Webserver(url, basic_auth(*login) if login else {}, client_context(self.cert))

    def status(self, url: str, headers: Mapping[str, str], *, body: bytes | None = None) -> int:
        request = urllib.request.Request(url, data=body, headers={**headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30, context=client_context(self.cert)) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as exc:
            return exc.code


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    nginx = nginx_binary()
    root = tmp_path_factory.mktemp("auth_proxy")
    ports = ProxyPorts(free_port(), free_port(), free_port(), free_port(), free_port())
    cert, key = make_certificate(root)
    operators, viewers = root / "htpasswd-operators", root / "htpasswd-viewers"
    operators.write_text(sha512_crypt_entry(*OPERATOR))
    # Operators may use the read-only UI too; viewers only that one.
    viewers.write_text(sha1_entry(*VIEWER) + sha512_crypt_entry(*OPERATOR))
    site = root / "shortinterest.conf"
    site.write_text(site_for_test(cert, key, operators, viewers, ports))
    conf = root / "nginx.conf"
    conf.write_text(nginx_config(root, site))

    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    dg.DagsterInstance.from_config(str(home)).dispose()  # storage made once, before two webservers share it
    env = {
        "DAGSTER_HOME": str(home),
        "SHORTINTEREST_DATABASE_URL": f"sqlite:///{root / 'warehouse.db'}",
        "PATH": str(Path(sys.executable).parent),
    }
    services = ServiceGroup(root / "services", env)
    try:
        checked = services.run([nginx, "-t", "-e", str(root / "error.log"), "-p", str(root), "-c", str(conf)])
        assert checked.returncode == 0, checked.stdout
        webserver = [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1"]
        services.start("webserver", [*webserver, "-p", str(ports.ui_upstream)])
        services.start("webserver-readonly", [*webserver, "-p", str(ports.read_only_upstream), "--read-only"])
        services.start("nginx", [nginx, "-e", str(root / "error.log"), "-p", str(root), "-c", str(conf)])
        started = Proxy(ports, cert, services, home)
        for url, login in ((started.ui, OPERATOR), (started.read_only_ui, VIEWER)):
            try:
                wait_for(started.webserver(url, login).ready, f"{url} to serve", timeout=START_TIMEOUT, interval=0.5)
            except AssertionError as exc:
                error_log = (root / "error.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{exc}\n{services.logs()}\n--- nginx error.log ---\n{error_log}") from None
        yield started
    finally:
        services.stop_all()
    assert not any(listening(port) for port in (ports.https, ports.ui_upstream)), "a service outlived the test"


def test_without_a_login_every_page_and_graphql_answer_401(proxy: Proxy) -> None:
    wrong = basic_auth(OPERATOR[0], "not-the-password")
    for base in (proxy.ui, proxy.read_only_ui):
        for path in PATHS:
            for headers in ({}, wrong):
                assert proxy.status(base + path, headers) == 401, (base, path, headers)
        body = json.dumps({"query": VERSION_QUERY}).encode()
        assert proxy.status(base + "/graphql", {}, body=body) == 401
    # A viewer's login does not open the full UI.
    assert proxy.status(proxy.ui + "/server_info", basic_auth(*VIEWER)) == 401
    # Plain HTTP only sends people to HTTPS.
    request = urllib.request.Request(f"http://127.0.0.1:{proxy.ports.http}/runs")
    with pytest.raises(urllib.error.HTTPError) as redirected:
        urllib.request.build_opener(_NoRedirect()).open(request, timeout=30)
    assert redirected.value.code == 301 and redirected.value.headers["Location"].startswith("https://")


def test_with_a_login_server_info_and_graphql_answer_200(proxy: Proxy) -> None:
    for base, login in ((proxy.ui, OPERATOR), (proxy.read_only_ui, VIEWER), (proxy.read_only_ui, OPERATOR)):
        headers = basic_auth(*login)
        assert proxy.status(base + "/server_info", headers) == 200
        assert proxy.status(base + "/", headers) == 200
        body = json.dumps({"query": VERSION_QUERY}).encode()
        assert proxy.status(base + "/graphql", headers, body=body) == 200
        assert proxy.webserver(base, login).query(VERSION_QUERY)["version"]


def test_the_graphql_websocket_passes_the_proxy_with_a_login_only(proxy: Proxy) -> None:
    for base, login in ((proxy.ui, OPERATOR), (proxy.read_only_ui, VIEWER)):
        url = base.replace("https://", "wss://") + "/graphql"
        context = client_context(proxy.cert)
        with pytest.raises(InvalidStatus) as refused:
            connect(url, ssl=context, subprotocols=[GRAPHQL_WS], open_timeout=30)
        assert refused.value.response.status_code == 401
        with connect(
            url,
            ssl=context,
            subprotocols=[GRAPHQL_WS],
            additional_headers=basic_auth(*login),
            open_timeout=30,
        ) as websocket:
            assert websocket.subprotocol == "graphql-ws"
            websocket.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(websocket.recv(timeout=30)) == {"type": "connection_ack"}


def test_the_read_only_ui_refuses_a_launch_the_full_one_queues(proxy: Proxy) -> None:
    with pytest.raises(GraphQLError, match="launchRun answered UnauthorizedError"):
        launch_job(proxy.webserver(proxy.read_only_ui, VIEWER), LOCATION, REPORT_JOB, {})
    run_id = launch_job(proxy.webserver(proxy.ui, OPERATOR), LOCATION, REPORT_JOB, {})
    with dg.DagsterInstance.from_config(str(proxy.instance_home)) as instance:
        assert [run.run_id for run in instance.get_runs()] == [run_id]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None

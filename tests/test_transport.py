"""Where the key may travel: TLS verified, never plain http off this machine, never on a redirect
or a proxy hop it did not choose, never with a video download.

Every server here is real and listens on 127.0.0.0/8: a TLS server with a self-signed
certificate (made with the ``openssl`` command), the simulator, and bare listeners on
127.0.0.2 that record whatever reaches them.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from runway_widgets import Client, Outcome, TransportError, watch
from runway_widgets.errors import BadRequestError
from runway_widgets.simulator import Fault, Simulator

from helpers import communicate, instant

KEY = "sentinel-KEY-5a1e7c0ffee"  # made up


def one_sentence(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text and text[-1] in ".)", text
    assert KEY not in text and KEY not in repr(error)
    return text


def cli(args: list[str], env_extra: dict[str, str], timeout: float = 30.0) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("COMETAPI_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"))}
    env.update(PYTHONIOENCODING="utf-8", COMETAPI_KEY=KEY, **env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "runway_widgets.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env, start_new_session=True)
    code, out, err = communicate(proc, timeout)
    assert "Traceback" not in err and KEY not in out + err
    return code, out, err


class Recorder:
    """A bare TCP listener that keeps whatever bytes arrive (and answers nothing useful)."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-recorder", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    self.received.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    try:
        rec = Recorder()
    except OSError:
        pytest.skip("cannot bind 127.0.0.2 on this host")
    try:
        yield rec
    finally:
        rec.close()


# -- TLS ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class _Feed(http.server.BaseHTTPRequestHandler):
    """Answers every feed poll with a finished task."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append(dict(self.headers))  # type: ignore[attr-defined]
        body = json.dumps({"code": "success", "data": {"task_id": "tls-task", "status": "SUCCESS",
                                                       "progress": "100%"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class TlsServer(http.server.ThreadingHTTPServer):
    """HTTPS on 127.0.0.1 with a certificate nobody trusts; counts connection attempts."""

    daemon_threads = True

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Feed)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.attempts = 0
        self.requests: list[dict[str, str]] = []
        self.url = f"https://127.0.0.1:{self.server_port}"

    def get_request(self) -> Any:
        self.attempts += 1  # one per TCP connection, whether or not the handshake succeeds
        return super().get_request()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[TlsServer]:
    server = TlsServer(*certificate)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-tls",
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_self_signed_certificate_is_refused(tls_server: TlsServer) -> None:
    with Client(KEY, tls_server.url, connect_timeout=5) as client:
        started = time.monotonic()
        with pytest.raises(TransportError) as info:
            client.fetch("tls-task")
    assert time.monotonic() - started < 5
    text = one_sentence(info.value)
    assert text == f"TLS verification failed for 127.0.0.1:{tls_server.server_port}; the connection is not trusted."
    assert info.value.transient is False  # trying again cannot make the certificate trusted
    assert tls_server.attempts == 1 and tls_server.requests == []  # the key never went over it


def test_a_watch_stops_at_once_on_an_untrusted_certificate(tls_server: TlsServer) -> None:
    with Client(KEY, tls_server.url) as client:
        handle = watch("tls-task", client=client, interval=0.05, give_up_after=60)
        with pytest.raises(TransportError, match="TLS verification failed"):
            handle.wait(10)
        time.sleep(0.5)  # a retry storm would show here
    assert handle.outcome is Outcome.ERROR and handle.update().polls == 1
    assert tls_server.attempts == 1 and tls_server.requests == []
    code, out, err = cli(["tls-task", "--interval", "0.05"], {"COMETAPI_BASE_URL": tls_server.url})
    assert code == 6
    assert err == f"runway-watch: TLS verification failed for 127.0.0.1:{tls_server.server_port}; " \
                  "the connection is not trusted.\n"
    assert tls_server.attempts == 2 and tls_server.requests == []


def test_the_same_server_is_trusted_with_its_certificate(tls_server: TlsServer, certificate: tuple[Path, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Positive control: verification is what failed above, and it stays on (via the CA bundle)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    with Client(KEY, tls_server.url) as client:
        assert client.fetch("tls-task").succeeded
    (headers,) = tls_server.requests
    assert headers["Authorization"] == f"Bearer {KEY}"


# -- plain http -------------------------------------------------------------------------------------------


def test_plain_http_off_loopback_is_refused_before_any_socket() -> None:
    """An audit hook in a fresh interpreter sees every DNS lookup and connect: there are none."""
    code = r"""
import json, sys
from runway_widgets import Client, ConfigError, cli, watch
events = []
sys.addaudithook(lambda event, args: events.append(event) if event.startswith("socket.") else None)
results = {"cli": cli.main(["abc", "--base-url", "http://example.invalid"])}
for url in ["http://example.invalid", "http://example.invalid:8080/v1", "http://evil.localhost",
            "http://10.0.0.5", "http://0.0.0.0:8765", "http://127.0.0.1.nip.io"]:
    try:
        Client("sentinel-KEY-5a1e7c0ffee", url)
        results[url] = "accepted"
    except ConfigError as exc:
        results[url] = str(exc)
try:
    watch("abc", api_key="sentinel-KEY-5a1e7c0ffee", base_url="http://example.invalid")
    results["watch"] = "accepted"
except ConfigError as exc:
    results["watch"] = str(exc)
print(json.dumps({"events": events, "results": results}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    env["COMETAPI_KEY"] = KEY
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                          start_new_session=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["events"] == []  # no getaddrinfo, no connect: refused before DNS
    assert report["results"].pop("cli") == 2
    assert "runway-watch: Refusing to send the API key over plain http to example.invalid; use https://." in proc.stderr
    for url, said in report["results"].items():
        assert said.startswith("Refusing to send the API key over plain http to "), (url, said)


def test_proxy_settings_never_carry_the_key_in_clear(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY would send a plain-http request (key and all) to the proxy host: not for us."""
    with Simulator(keys=[KEY]) as sim:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, recorder.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        task = sim.add_task(KEY, instant())
        with Client(KEY, sim.base_url) as client:
            assert client.fetch(task).succeeded
        code, out, err = cli([task, "--interval", "0.1"], {"COMETAPI_BASE_URL": sim.base_url,
                                                          "HTTP_PROXY": recorder.url, "ALL_PROXY": recorder.url})
        assert code == 0 and "SUCCESS" in out, err
        assert [r.status for r in sim.requests_for(task)] == [200, 200] and all(r.key_ok for r in sim.requests)
    time.sleep(0.2)
    assert recorder.received == []


# -- redirects ------------------------------------------------------------------------------------------------


@pytest.fixture
def sim_and_elsewhere() -> Iterator[tuple[Simulator, Simulator]]:
    """A simulator, and another one on 127.0.0.2 at the same port, where redirects point."""
    sim = Simulator(keys=[KEY]).start()
    try:
        other = Simulator(host="127.0.0.2", port=sim.port).start()
    except OSError:
        sim.stop()
        pytest.skip("cannot bind 127.0.0.2 on this host")
    try:
        yield sim, other
    finally:
        other.stop()
        sim.stop()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_never_followed(sim_and_elsewhere: tuple[Simulator, Simulator], status: int) -> None:
    sim, other = sim_and_elsewhere
    task = sim.add_task(KEY, instant())
    with Client(KEY, sim.base_url) as client, Client(KEY, sim.base_url, feed="official") as official:
        sim.inject(Fault("redirect", status=status))
        with pytest.raises(BadRequestError, match=f"HTTP {status}, a redirect to http://127.0.0.2:"):
            client.fetch(task)
        sim.inject(Fault("redirect", status=status, path="/runwayml/"))
        with pytest.raises(BadRequestError, match="redirect"):
            official.fetch(task)
        sim.inject(Fault("redirect", status=status, path="/runway/pro/"))
        with pytest.raises(BadRequestError, match="redirect") as info:
            client.create_text_to_video("a boat", callback_url="https://example.com/hook")
        one_sentence(info.value)
        assert not info.value.transient
    assert other.requests == []
    assert [r.status for r in sim.requests] == [status] * 3


def test_a_redirect_ends_the_watch_and_the_cli_without_a_hop(sim_and_elsewhere: tuple[Simulator, Simulator]) -> None:
    sim, other = sim_and_elsewhere
    task = sim.add_task(KEY, instant())
    sim.inject(Fault("redirect", status=307))
    with Client(KEY, sim.base_url) as client:
        handle = watch(task, client=client, interval=0.05)
        with pytest.raises(BadRequestError):
            handle.wait(10)
    assert handle.outcome is Outcome.ERROR
    sim.inject(Fault("redirect", status=308))
    code, out, err = cli([task], {"COMETAPI_BASE_URL": sim.base_url})
    assert code == 2
    assert err.startswith("runway-watch: The server answered HTTP 308, a redirect to http://127.0.0.2:")
    assert err.rstrip().endswith("check the base URL.") and len(err.strip().splitlines()) == 1
    assert [r.status for r in sim.requests_for(task)] == [307, 308] and other.requests == []


# -- the video download ---------------------------------------------------------------------------------------


def test_downloads_never_carry_the_key(sim_and_elsewhere: tuple[Simulator, Simulator], tmp_path: Path) -> None:
    """Saved through the API (with an expired URL and a redirected one) and the CLI: no Authorization."""
    sim, other = sim_and_elsewhere
    expiring = sim.add_task(KEY, instant(url_ttl=1))
    sim.inject(Fault("slow", delay=2.1, path=f"/media/{expiring}"))  # expired on arrival: a fresh URL is fetched
    redirected = sim.add_task(KEY, instant())
    sim.inject(Fault("redirect", path=f"/media/{redirected}"))  # the media host sends us to 127.0.0.2
    with Client(KEY, sim.base_url) as client:
        first = watch(expiring, client=client, interval=0.1, save=str(tmp_path / "a") + os.sep)
        second = watch(redirected, client=client, interval=0.1, save=str(tmp_path / "b") + os.sep)
        assert first.wait(20).succeeded and second.wait(20).succeeded
    assert first.saved_path and second.saved_path
    by_cli = sim.add_task(KEY, instant())
    code, out, err = cli([by_cli, "--save", str(tmp_path / "c") + os.sep, "--interval", "0.1"],
                         {"COMETAPI_BASE_URL": sim.base_url})
    assert code == 0, err
    media = [r for r in sim.requests if r.path.startswith("/media/")]
    assert len(media) == 5  # expired + fresh, redirected + fresh, the CLI's
    assert not any(r.auth_sent for r in media)
    assert sorted(r.status for r in media) == [200, 200, 200, 302, 403]
    (hop,) = other.requests  # the redirect was followed (it is a plain URL), without the key
    assert not hop.auth_sent
    api_calls = [r for r in sim.requests if not r.path.startswith("/media/")]
    assert api_calls and all(r.auth_sent and r.key_ok for r in api_calls)

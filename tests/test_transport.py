"""One HTTP exchange against servers that misbehave on purpose: a raw socket server per test."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from poller.bitrix.client import PortalClient
from poller.bitrix.deadline import Deadline
from poller.bitrix.transport import MAX_BODY_BYTES, Transport
from poller.clock import ManualClock
from poller.config import HttpConfig, PortalConfig
from poller.errors import BitrixError, TransportError

Behaviour = Callable[[socket.socket, threading.Event], None]
ONE_SECOND = HttpConfig(connect_timeout_seconds=1, read_timeout_seconds=1, max_retries=0)
# For answers that never complete: the trickles send a byte every 0.1 s, so only a deadline for
# the whole answer (not one per read) ends them.
DEADLINE = HttpConfig(connect_timeout_seconds=1, read_timeout_seconds=0.4, max_retries=0)


class RawServer:
    """Accepts connections on loopback and hands each to `behaviour` in its own thread."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):  # the client hung up: what most tests expect
            self.behaviour(connection, self.stopping)

    def stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):  # wakes the accept at once rather than at its timeout
            self._listener.shutdown(socket.SHUT_RDWR)
        self._accepting.join(5)
        self._listener.close()
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def raw_server() -> Iterator[Callable[[Behaviour], RawServer]]:
    started: list[RawServer] = []

    def start(behaviour: Behaviour) -> RawServer:
        server = RawServer(behaviour)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def read_request(connection: socket.socket) -> bytes:
    """Read one request's head and its body (by Content-Length)."""
    connection.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        body += connection.recv(65536)
    return head


def answer(body: bytes, status: str = "200 OK", headers: str = "Content-Type: application/json") -> Behaviour:
    def behave(connection: socket.socket, _stopping: threading.Event) -> None:
        read_request(connection)
        connection.sendall(
            f"HTTP/1.1 {status}\r\n{headers}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )

    return behave


def trickle_body(connection: socket.socket, stopping: threading.Event) -> None:
    read_request(connection)
    connection.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
    )
    while not stopping.wait(0.1):
        connection.sendall(b" ")


def stall_after_headers(connection: socket.socket, stopping: threading.Event) -> None:
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    stopping.wait(30)


def never_answer(connection: socket.socket, stopping: threading.Event) -> None:
    read_request(connection)
    stopping.wait(30)


def trickle_headers(connection: socket.socket, stopping: threading.Event) -> None:
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not stopping.wait(0.1):
        connection.sendall(b"a")


def post(server_url: str, http: HttpConfig = ONE_SECOND, host: str = "slow.example") -> dict[str, object]:
    transport = Transport(requests.Session(), http)
    return transport.post_json(f"{server_url}/rest/1/topsecret42/batch", {"halt": 0}, host=host, what="batch")


def timed_failure(server_url: str) -> tuple[TransportError, float]:
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        post(server_url, DEADLINE)
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize(
    "behaviour", [trickle_body, stall_after_headers, never_answer, trickle_headers], ids=lambda b: b.__name__
)
def test_a_misbehaving_portal_ends_with_a_timeout_at_the_deadline(
    raw_server: Callable[[Behaviour], RawServer], behaviour: Behaviour
) -> None:
    server = raw_server(behaviour)
    error, seconds = timed_failure(server.url)
    assert error.code == "TIMEOUT"
    assert error.retryable is True
    assert error.message == "portal slow.example: batch: no complete answer within 0.4 s"
    assert seconds < 5  # the deadline is 0.4 s for the whole answer, not per read


def test_a_client_gives_up_on_a_hung_portal_after_its_retries(
    raw_server: Callable[[Behaviour], RawServer],
) -> None:
    server = raw_server(never_answer)
    portal = PortalConfig(name="hung", base_url=server.url, webhook_path="/rest/1/s3cret/", users=(1,))
    http = HttpConfig(connect_timeout_seconds=1, read_timeout_seconds=0.2, max_retries=2)
    client = PortalClient(portal, requests.Session(), http, clock=ManualClock())
    with pytest.raises(TransportError) as caught:
        client.call("timeman.status", {})
    assert caught.value.code == "TIMEOUT"
    assert server.connections == 3


def test_the_watchdog_shuts_a_watched_socket_at_its_deadline_and_never_a_cancelled_one() -> None:
    kept, kept_peer = socket.socketpair()
    watched, watched_peer = socket.socketpair()
    with kept, kept_peer, watched, watched_peer:
        cancelled = Deadline(0.02)  # made first: past its moment by the time the other is cut
        cancelled.watch(kept)
        cancelled.cancel()
        Deadline(0.02).watch(watched)
        watched.settimeout(5)
        assert watched.recv(1) == b""  # woken by the cut at 0.02 s, not by the 5 s timeout
        kept_peer.sendall(b"x")
        kept.settimeout(5)
        assert kept.recv(1) == b"x"  # the exchange that finished in time keeps its connection


def test_deeply_nested_json_is_a_bad_response_not_a_crash(
    raw_server: Callable[[Behaviour], RawServer],
) -> None:
    server = raw_server(answer(b"[" * 200_000 + b"]" * 200_000))
    with pytest.raises(TransportError) as caught:
        post(server.url)
    assert (caught.value.code, caught.value.http_status, caught.value.retryable) == (
        "BAD_RESPONSE",
        200,
        False,
    )
    assert "nests too deeply" in caught.value.message


def test_a_number_too_long_to_read_is_a_bad_response(raw_server: Callable[[Behaviour], RawServer]) -> None:
    server = raw_server(answer(b'{"result": {"u1": {"TZ_OFFSET": ' + b"9" * 5000 + b"}}}"))
    with pytest.raises(TransportError) as caught:
        post(server.url)
    assert (caught.value.code, caught.value.retryable) == ("BAD_RESPONSE", False)
    assert "number too long" in caught.value.message


def test_large_but_readable_numbers_reach_the_caller(raw_server: Callable[[Behaviour], RawServer]) -> None:
    server = raw_server(answer(b'{"result": {"TZ_OFFSET": 99999999999999, "LAT_OPEN": 1e999}}'))
    body = post(server.url)
    assert body["result"] == {"TZ_OFFSET": 99999999999999, "LAT_OPEN": float("inf")}


def test_a_declared_body_over_the_cap_is_refused_before_reading(
    raw_server: Callable[[Behaviour], RawServer],
) -> None:
    def huge(connection: socket.socket, stopping: threading.Event) -> None:
        read_request(connection)
        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode())
        stopping.wait(30)

    server = raw_server(huge)
    with pytest.raises(TransportError) as caught:
        post(server.url, HttpConfig(read_timeout_seconds=20))
    assert caught.value.code == "BAD_RESPONSE"
    assert f"body larger than {MAX_BODY_BYTES} bytes" in caught.value.message


def test_a_rest_3_error_envelope_becomes_a_bitrix_error(raw_server: Callable[[Behaviour], RawServer]) -> None:
    envelope = {
        "error": {
            "code": "BITRIX_REST_V3_EXCEPTION_ACCESSDENIEDEXCEPTION",
            "message": "Access denied",
            "validation": [],
        }
    }
    server = raw_server(answer(json.dumps(envelope).encode(), "403 Forbidden"))
    with pytest.raises(BitrixError) as caught:
        post(server.url)
    assert type(caught.value) is BitrixError
    assert caught.value.code == "BITRIX_REST_V3_EXCEPTION_ACCESSDENIEDEXCEPTION"
    assert caught.value.http_status == 403
    assert caught.value.message == "HTTP 403 BITRIX_REST_V3_EXCEPTION_ACCESSDENIEDEXCEPTION: Access denied"


def test_a_rest_1_error_with_an_empty_code_is_read_by_its_description(
    raw_server: Callable[[Behaviour], RawServer],
) -> None:
    body = json.dumps({"error": "", "error_description": "User not found"}).encode()
    server = raw_server(answer(body, "400 Bad Request"))
    with pytest.raises(BitrixError) as caught:
        post(server.url)
    assert (caught.value.code, caught.value.per_user) == ("USER_NOT_FOUND", True)


def test_an_error_status_without_an_envelope_names_the_status(
    raw_server: Callable[[Behaviour], RawServer],
) -> None:
    server = raw_server(answer(b"{}", "503 Service Unavailable"))
    with pytest.raises(BitrixError) as caught:
        post(server.url)
    assert (caught.value.code, caught.value.retryable) == ("HTTP_503", True)


def test_chunked_and_gzipped_answers_are_read_whole(raw_server: Callable[[Behaviour], RawServer]) -> None:
    payload = gzip.compress(json.dumps({"result": {"STATUS": "OPENED", "pad": "x" * 50_000}}).encode())

    def chunked(connection: socket.socket, _stopping: threading.Event) -> None:
        read_request(connection)
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for start in range(0, len(payload), 100):
            piece = payload[start : start + 100]
            connection.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        connection.sendall(b"0\r\n\r\n")

    server = raw_server(chunked)
    body = post(server.url)
    assert body["result"]["STATUS"] == "OPENED"  # type: ignore[index]


def test_a_refused_connection_is_a_short_message_without_the_webhook_path() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError) as caught:
        post(f"http://127.0.0.1:{port}", host="127.0.0.1")
    assert caught.value.message == "portal 127.0.0.1: batch: connection refused"
    assert (caught.value.code, caught.value.retryable) == ("CONNECTION_ERROR", True)


def test_an_unresolvable_name_says_so() -> None:
    with pytest.raises(TransportError) as caught:
        post("http://no-such-portal.invalid", host="no-such-portal.invalid")
    assert caught.value.message == "portal no-such-portal.invalid: batch: name not resolved"


def test_https_to_a_plain_http_port_is_a_permanent_tls_error_not_retried(
    raw_server: Callable[[Behaviour], RawServer],
) -> None:
    def plain_http(connection: socket.socket, _stopping: threading.Event) -> None:
        connection.recv(65536)  # a TLS hello: not HTTP, so a plain server answers 400 at once
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    server = raw_server(plain_http)
    portal = PortalConfig(
        name="tls", base_url=f"https://127.0.0.1:{server.port}", webhook_path="/rest/1/s3cret/", users=(1,)
    )
    client = PortalClient(portal, requests.Session(), HttpConfig(max_retries=4), clock=ManualClock())
    with pytest.raises(TransportError) as caught:
        client.call("timeman.status", {})
    assert caught.value.message == (
        "portal 127.0.0.1: timeman.status: TLS error: wrong version number (is the port plain http?)"
    )
    assert (caught.value.code, caught.value.retryable) == ("TLS_ERROR", False)
    assert client.requests_sent == 1


def test_a_session_shared_by_clients_keeps_one_deadline_adapter() -> None:
    session = requests.Session()
    Transport(session)
    adapter = session.get_adapter("https://acme.bitrix24.com")
    Transport(session)
    assert session.get_adapter("https://acme.bitrix24.com") is adapter

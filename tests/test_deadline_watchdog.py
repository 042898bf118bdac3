"""The process's one deadline watchdog (poller/bitrix/deadline.py) keeps every deadline: a TLS
exchange tunnelled in TLS (an https:// proxy, whose socket urllib3 hands as an SSLTransport) is
cut too, a socket that cannot be shut costs only its own cut, and a deadline beyond the longest
wait a thread can take does not end the watchdog.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from urllib3.util.ssltransport import SSLTransport

from poller.bitrix import deadline as deadlines
from poller.bitrix.deadline import Deadline


@pytest.fixture(autouse=True)
def own_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deadlines, "_WATCHDOG", None)  # a watchdog of this test's own


def is_cut(sock: socket.socket) -> bool:
    """Whether a read on `sock` ends within 3 s (the watchdog shut it, or its peer)."""
    sock.settimeout(3)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def _tls_pair(tmp_path: Path) -> tuple[SSLTransport, ssl.SSLSocket]:
    """A client SSLTransport (what urllib3 makes for TLS in TLS) and its server end."""
    if shutil.which("openssl") is None:
        pytest.skip("the TLS-in-TLS test makes its certificate with the openssl command")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    client_end, server_end = socket.socketpair()
    served: list[ssl.SSLSocket] = []
    handshake = threading.Thread(
        target=lambda: served.append(server_context.wrap_socket(server_end, server_side=True)), daemon=True
    )
    handshake.start()
    transport = SSLTransport(client_end, client_context, server_hostname="localhost")
    handshake.join(5)
    return transport, served[0]


def test_a_tls_exchange_tunnelled_in_tls_is_cut_at_its_deadline(tmp_path: Path) -> None:
    tunnelled, server_end = _tls_pair(tmp_path)
    with server_end:
        Deadline(0.05).watch(tunnelled)  # type: ignore[arg-type]  # as urllib3's sock may be
        assert is_cut(server_end)  # the portal's end sees the tunnel's socket shut


def test_a_socket_that_cannot_be_shut_costs_only_its_own_cut(caplog: pytest.LogCaptureFixture) -> None:
    Deadline(0.01).watch(object())  # type: ignore[arg-type]  # shutting it raises TypeError
    watched, peer = socket.socketpair()
    with watched, peer:
        Deadline(0.1).watch(watched)  # the next portal's exchange
        assert is_cut(watched), "a cut that raised ended the watchdog: later deadlines are never kept"
    assert "a socket could not be shut" in caplog.text


def test_a_deadline_beyond_the_longest_wait_does_not_end_the_watchdog() -> None:
    """http.read_timeout_seconds takes any number > 0 (TOML's `inf` too); the watchdog's
    Condition.wait refuses a timeout past threading.TIMEOUT_MAX (~292 years) with OverflowError,
    which ends the thread: a nearer deadline watched afterwards is never kept."""
    far, far_peer = socket.socketpair()
    first, first_peer = socket.socketpair()
    watched, peer = socket.socketpair()
    with far, far_peer, first, first_peer, watched, peer:
        patient = Deadline(1e10)
        patient.watch(far)
        Deadline(0.02).watch(first)
        first.settimeout(3)
        assert first.recv(1) == b""  # cut; the watchdog then sleeps toward the far deadline
        Deadline(0.05).watch(watched)
        cut = is_cut(watched)
        patient.cancel()
        assert cut, "the watchdog died waiting toward a deadline past TIMEOUT_MAX"

"""Plain HTTP, garbage, stalled and vanishing clients: each gets its
documented answer and leaves the server serving; handshake failures are
logged at info with the reason."""
import os
import socket
import time

import pytest

from harness.clients import gnutls_cli
from harness.httpd import Httpd, vhost
from harness.ports import free_ports


@pytest.fixture(scope="module", params=["event", "prefork"])
def server(request, pki):
    chain, key = pki.identity(f"robust-{request.param}", "p256")
    h = Httpd(mpm=request.param, timeout=3)
    port = free_ports(1)[0]
    h.docroot("site", body="robust page\n")
    h.write_config(vhost(port, chain, key, docroot=h.root / "site",
                         extra="  GnuTLSPriorities NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-AES-128-CBC"), [port])
    h.start()
    yield h, port
    h.remove()


def still_serves(h, port, pki):
    rc, out = gnutls_cli(port, pki.ca_cert)
    assert rc == 0 and "robust page" in out, out
    log = h.log()
    assert "Segmentation fault" not in log and "exit signal" not in log, log


def read_all(sock, timeout=10):
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"server did not close; got {data!r}")
        if not chunk:
            return data
        data += chunk


def test_plain_http_gets_400(server, pki):
    h, port = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
        reply = read_all(s)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply
    assert b"speaking plain HTTP to an SSL-enabled server port" in body
    assert f"https://localhost:{port}/".encode() in body
    assert b"Connection: close" in head
    still_serves(h, port, pki)
    assert "plain HTTP request" in h.log()


@pytest.mark.parametrize("prefix", [b"\x16\x03\x01", b""])
def test_garbage_bytes(server, pki, prefix):
    h, port = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(prefix + os.urandom(4096))
        reply = read_all(s)
    assert not reply.startswith(b"HTTP/"), reply  # garbage is not HTTP: no 400 page
    still_serves(h, port, pki)


def test_client_stalls_mid_handshake(server, pki):
    h, port = server
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # half a ClientHello
    still_serves(h, port, pki)  # others are served meanwhile
    start = time.monotonic()
    read_all(s, timeout=15)  # the server gives up after Timeout (3 s)
    assert time.monotonic() - start < 14
    s.close()
    time.sleep(0.2)
    assert "Timeout" in h.log() or "handshake" in h.log()


def test_client_hangs_up_mid_handshake(server, pki):
    h, port = server
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        s.close()
    time.sleep(0.3)
    still_serves(h, port, pki)
    assert "the client closed the connection" in h.log()


def test_handshake_failure_logged_with_reason(server, pki):
    h, port = server
    rc, out = gnutls_cli(port, pki.ca_cert,
                         priority="NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC")
    assert rc != 0
    time.sleep(0.3)
    lines = [l for l in h.log().splitlines() if "handshake failed" in l.lower()]
    assert any("cipher" in l.lower() and "[gnutls:info]" in l for l in lines), h.log()
    still_serves(h, port, pki)


def test_plain_http_400_goes_through_apache(tmp_path, pki):
    """The 400 is Apache's own: the vhost's ErrorDocument replaces the page
    and the access log records the request with status 400 (as mod_ssl)."""
    chain, key = pki.identity("robust-errordoc", "p256")
    h = Httpd(timeout=3)  # mod_log_config is built into Debian's httpd
    port = free_ports(1)[0]
    access_log = h.root / "logs" / "access.log"
    h.write_config(vhost(port, chain, key, extra="\n".join([
        '  ErrorDocument 400 "Use the https scheme on this port"',
        f'  CustomLog {access_log} "%a %>s %r"'])), [port])
    h.start()
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /some/where HTTP/1.1\r\nHost: localhost\r\n\r\n")
            reply = read_all(s)
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply
        assert body == b"Use the https scheme on this port", reply
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (access_log.exists() and " 400 " in access_log.read_text()):
            time.sleep(0.1)
        lines = access_log.read_text().splitlines()
        assert any(line.startswith("127.0.0.1 400 ") for line in lines), lines
        rc, out = gnutls_cli(port, pki.ca_cert)
        assert rc == 0 and ("HTTP/1.1 200" in out or "HTTP/1.1 404" in out), out
    finally:
        h.remove()

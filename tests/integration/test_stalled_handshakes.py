"""A client that sends half a ClientHello and waits is ended by mod_reqtimeout's
`RequestReadTimeout handshake=` when it is loaded (as with mod_ssl), and by
`Timeout` without it; other clients are served meanwhile."""
import socket
import time

import pytest

from harness.clients import gnutls_cli
from harness.httpd import Httpd, vhost
from harness.ports import free_ports

HALF_CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


def serve(pki, mpm, timeout, modules=(), top=""):
    chain, key = pki.identity(f"stall-{mpm}-{timeout}", "p256")
    h = Httpd(mpm=mpm, timeout=timeout, extra_modules=list(modules))
    port = free_ports(1)[0]
    h.docroot("site", body="stall page\n")
    h.write_config(top + vhost(port, chain, key, docroot=h.root / "site"), [port])
    h.start()
    return h, port


def seconds_until_closed(port, pki, h, limit=40):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(HALF_CLIENT_HELLO)
    start = time.monotonic()
    rc, out = gnutls_cli(port, pki.ca_cert)  # another client meanwhile
    assert rc == 0 and "stall page" in out, out
    s.settimeout(limit)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        raise AssertionError(f"the server kept the stalled connection open for {limit} s\n{h.log()}")
    finally:
        s.close()
    return time.monotonic() - start


@pytest.mark.parametrize("load_order", ["reqtimeout-first", "gnutls-first"])
@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_request_read_timeout_handshake_ends_a_stalled_handshake(pki, mpm, load_order):
    # Timeout is long: only mod_reqtimeout's 2 s handshake limit can end it
    # soon, whichever of the two modules is loaded first.
    modules, top = ["reqtimeout"], ""
    if load_order == "gnutls-first":
        modules, top = [], "LoadModule reqtimeout_module /usr/lib/apache2/modules/mod_reqtimeout.so\n"
    h, port = serve(pki, mpm, timeout=30, modules=modules,
                    top=top + "RequestReadTimeout handshake=2 header=20 body=20\n")
    try:
        took = seconds_until_closed(port, pki, h)
        assert 1.5 < took < 10, (took, h.log())
        time.sleep(0.3)
        assert "Request handshake read timeout" in h.log(), h.log()
    finally:
        h.remove()


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_timeout_ends_a_stalled_handshake_without_reqtimeout(pki, mpm):
    h, port = serve(pki, mpm, timeout=3)
    try:
        took = seconds_until_closed(port, pki, h)
        assert 2.5 < took < 12, (took, h.log())
        time.sleep(0.3)
        assert "sent nothing for 3 seconds (Timeout)" in h.log(), h.log()
    finally:
        h.remove()

"""OCSP stapling with responses fetched from the certificate's responder (a
real `openssl ocsp` responder on loopback): stapled by default when
mod_socache_shmcb is loaded, for TLS 1.2 and 1.3; a revoked certificate's
response is not stapled; a responder that is down costs no handshake and is
retried after GnuTLSOCSPFailureTimeout; mod_watchdog refreshes responses in
the background; nonces are checked; unmet requirements with
GnuTLSOCSPStapling on fail configtest."""
import re
import socket
import signal
import subprocess
import threading
import time

import pytest

from harness.httpd import Httpd, vhost
from harness.ports import free_ports


def serial_of(cert):
    s = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-serial"], capture_output=True, text=True,
                       check=True).stdout.strip().split("=")[1]
    return s if len(s) % 2 == 0 else "0" + s


class Responder:
    """openssl ocsp as the CA's responder; index lines say good or revoked."""

    def __init__(self, pki, port):
        self.pki, self.port, self.proc = pki, port, None
        self.index = pki.root / f"ocsp-index-{port}.txt"
        self.index.write_text("")
        self.log = pki.root / f"ocsp-responder-{port}.log"

    def add(self, cert, revoked=False):
        line = (f"R\t301231235959Z\t240101000000Z\t{serial_of(cert)}\tunknown\t/CN=x\n" if revoked
                else f"V\t301231235959Z\t\t{serial_of(cert)}\tunknown\t/CN=x\n")
        self.index.write_text(self.index.read_text() + line)

    def start(self):
        self.proc = subprocess.Popen(
            ["openssl", "ocsp", "-index", str(self.index), "-port", str(self.port), "-rsigner",
             str(self.pki.ca_cert), "-rkey", str(self.pki.ca_key), "-CA", str(self.pki.ca_cert), "-ndays", "1"],
            stdout=open(self.log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
        # Not by connecting: an empty connection stalls openssl's responder.
        deadline = time.monotonic() + 15
        while "waiting for OCSP client connections" not in self.log.read_text():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def responder(pki):
    r = Responder(pki, free_ports(1)[0])
    yield r
    r.stop()


def identity(pki, name, responder):
    key = pki.key(name, "p256")
    chain = pki.certify(name, key=key, ocsp_uri=f"http://127.0.0.1:{responder.port}/")
    return chain, key, pki.root / f"{name}.crt"


def status(port, pki, version="1_3"):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                        "-CAfile", str(pki.ca_cert), "-status", f"-tls{version}", "-ign_eof"],
                       input="GET / HTTP/1.0\r\n\r\n", capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


def start(chain, key, extra="", modules=("socache_shmcb",), top=""):
    h = Httpd(extra_modules=list(modules))
    port = free_ports(1)[0]
    h.write_config("LogLevel gnutls:info\n" + top + vhost(port, chain, key, extra=extra), [port])
    h.start()
    return h, port


@pytest.mark.parametrize("version", ["1_2", "1_3"])
def test_fetched_response_is_stapled_by_default(pki, responder, version):
    chain, key, cert = identity(pki, f"fetch-{version}", responder)
    responder.add(cert)
    responder.start()
    h, port = start(chain, key)
    try:
        out = status(port, pki, version)
        assert "OCSP Response Status: successful" in out and "Cert Status: good" in out, out + h.log()
        assert re.search(r"OCSP response from http://127.0.0.1:\d+/ cached for \d+ s", h.log()), h.log()
    finally:
        h.remove()


def test_revoked_certificate_is_not_stapled(pki, responder):
    chain, key, cert = identity(pki, "fetch-revoked", responder)
    responder.add(cert, revoked=True)
    responder.start()
    h, port = start(chain, key, "  GnuTLSOCSPAutoRefresh off")
    try:
        out = status(port, pki)
        assert "OCSP response: no response sent" in out, out
        assert "Verify return code: 0" in out  # the handshake itself is fine
        assert "REVOKED" in h.log(), h.log()
    finally:
        h.remove()


def test_responder_down_then_back(pki, responder):
    chain, key, cert = identity(pki, "fetch-down", responder)
    responder.add(cert)
    h, port = start(chain, key, "  GnuTLSOCSPAutoRefresh off\n  GnuTLSOCSPFailureTimeout 1")
    try:
        t0 = time.monotonic()
        out = status(port, pki)
        assert "OCSP response: no response sent" in out and "Verify return code: 0" in out, out
        assert time.monotonic() - t0 < 5
        assert "no OCSP response to staple" in h.log() and "cannot connect" in h.log(), h.log()
        responder.start()
        time.sleep(1.5)  # past GnuTLSOCSPFailureTimeout
        out = status(port, pki)
        assert "Cert Status: good" in out, out + h.log()
    finally:
        h.remove()


def test_background_refresh_without_handshakes(pki, responder):
    chain, key, cert = identity(pki, "fetch-refresh", responder)
    responder.add(cert)
    responder.start()
    h, port = start(chain, key, "  GnuTLSOCSPCacheTimeout 3\n  GnuTLSOCSPFuzzTime 2\n  GnuTLSOCSPFailureTimeout 1")
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(re.findall("cached for", h.log())) < 3:
            time.sleep(0.5)
        # Fetched at start and refreshed at least twice, with no client at all.
        assert len(re.findall("cached for", h.log())) >= 3, h.log()
        out = status(port, pki)
        assert "Cert Status: good" in out, out
    finally:
        h.remove()


def test_nonce_checked(pki, responder):
    chain, key, cert = identity(pki, "fetch-nonce", responder)
    responder.add(cert)
    responder.start()
    h, port = start(chain, key, "  GnuTLSOCSPCheckNonce on\n  GnuTLSOCSPAutoRefresh off")
    try:
        out = status(port, pki)
        assert "Cert Status: good" in out, out + h.log()
    finally:
        h.remove()


def test_stapling_on_without_issuer_in_chain_fails_configtest(pki, responder):
    _, key, cert = identity(pki, "fetch-noissuer", responder)
    h = Httpd(extra_modules=["socache_shmcb"])
    try:
        port = free_ports(1)[0]
        h.write_config(vhost(port, cert, key, extra="  GnuTLSOCSPStapling on"), [port])
        rc, out = h.configtest()
        assert rc != 0 and "GnuTLSOCSPStapling" in out and "issuer" in out, out
    finally:
        h.remove()


def test_without_a_cache_stapling_is_off_unless_required(pki, responder):
    chain, key, cert = identity(pki, "fetch-nocache", responder)
    responder.add(cert)
    responder.start()
    h, port = start(chain, key, modules=())
    try:
        out = status(port, pki)
        assert "OCSP response: no response sent" in out and "Verify return code: 0" in out, out
    finally:
        h.remove()
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.write_config(vhost(port, chain, key, extra="  GnuTLSOCSPStapling on"), [port])
        rc, out = h.configtest()
        assert rc != 0 and "mod_socache_shmcb" in out, out
    finally:
        h.remove()


class SilentResponder:
    """Accepts connections and never answers (a hung OCSP responder)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


def timed_status(port, pki):
    t0 = time.monotonic()
    out = status(port, pki)
    return time.monotonic() - t0, out


@pytest.mark.parametrize("refresh", ["off", "on"])
def test_a_responder_that_never_answers_does_not_stall_handshakes(pki, refresh):
    silent = SilentResponder()
    key = pki.key(f"silent-{refresh}", "p256")
    chain = pki.certify(f"silent-{refresh}", key=key, ocsp_uri=f"http://127.0.0.1:{silent.port}/")
    h, port = start(chain, key, f"  GnuTLSOCSPAutoRefresh {refresh}\n  GnuTLSOCSPSocketTimeout 4\n"
                                "  GnuTLSOCSPFailureTimeout 60")
    try:
        first = None
        if refresh == "off":
            # The first handshake finds no response and fetches (it holds
            # the certificate's fetch lock): it ends by the 4 s deadline.
            result = {}
            first = threading.Thread(target=lambda: result.update(t=timed_status(port, pki)))
            first.start()
            time.sleep(0.5)
        else:
            time.sleep(1)  # the watchdog's first refresh is under way
        # Meanwhile every other handshake goes ahead at once, without a staple.
        for _ in range(8):
            took, out = timed_status(port, pki)
            assert "OCSP response: no response sent" in out and "Verify return code: 0" in out, out
            assert took < 2, (took, h.log())
        if first:
            first.join()
            took, out = result["t"]
            assert "Verify return code: 0" in out, out
            assert took < 8, took
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "no complete response in time" not in h.log():
            time.sleep(0.2)
        assert "no complete response in time" in h.log(), h.log()
    finally:
        h.remove()
        silent.close()

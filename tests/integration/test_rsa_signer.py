"""RSA keys from files sign through OpenSSL's libcrypto by default
(`GnuTLSRSASigner auto`), or through GnuTLS when configured: real clients
complete handshakes with every RSA signature TLS uses (PKCS#1 v1.5 in TLS
1.2, PSS in TLS 1.2 and 1.3), the status page says who signs, and a bad
value fails configtest naming the directive."""
import re
import subprocess

import pytest

from harness.clients import gnutls_cli
from harness.httpd import Httpd, vhost
from harness.ports import free_ports

STATUS = """ExtendedStatus on
<Location /server-status>
  SetHandler server-status
</Location>
"""


def serve(pki, key_type, setting=None):
    chain, key = pki.identity(f"rsa-signer-{key_type}", key_type)
    h = Httpd(extra_modules=["status"])
    port = free_ports(1)[0]
    h.docroot("site", body="rsa signer page\n")
    top = STATUS + (f"GnuTLSRSASigner {setting}\n" if setting else "")
    h.write_config(top + vhost(port, chain, key, docroot=h.root / "site"), [port])
    h.start()
    return h, port


def signer_of(pki, port):
    r = subprocess.run(["curl", "-sS", "--cacert", str(pki.ca_cert), "--resolve", f"localhost:{port}:127.0.0.1",
                        f"https://localhost:{port}/server-status?auto"], capture_output=True, text=True, timeout=30)
    m = re.search(r"^GnuTLSVhost0KeySigner: (\S+)$", r.stdout, re.M)
    assert m, r.stdout + r.stderr
    return m.group(1)


GNUTLS_SIGS = [
    ("1.2", "SIGN-RSA-SHA256", "RSA-SHA256"),
    ("1.2", "SIGN-RSA-SHA384", "RSA-SHA384"),
    ("1.2", "SIGN-RSA-PSS-RSAE-SHA256", "RSA-PSS-RSAE-SHA256"),
    ("1.3", "SIGN-RSA-PSS-RSAE-SHA256", "RSA-PSS-RSAE-SHA256"),
    ("1.3", "SIGN-RSA-PSS-RSAE-SHA512", "RSA-PSS-RSAE-SHA512"),
]


@pytest.mark.parametrize("setting,expected", [(None, "libcrypto"), ("auto", "libcrypto"),
                                              ("libcrypto", "libcrypto"), ("gnutls", "gnutls")])
def test_every_rsa_signature_completes_a_handshake(pki, setting, expected):
    h, port = serve(pki, "rsa2048", setting)
    try:
        assert signer_of(pki, port) == expected
        for version, sig, name in GNUTLS_SIGS:
            prio = f"NORMAL:-VERS-ALL:+VERS-TLS{version}:-SIGN-ALL:+{sig}"
            rc, out = gnutls_cli(port, pki.ca_cert, priority=prio)
            assert rc == 0 and "rsa signer page" in out, (version, sig, out)
            # gnutls-cli verified the server's signature with the
            # certificate's key; its session description names the scheme.
            assert f"-({name})-" in out, (version, sig, out)
        for version, sigalg in [("-tls1_2", "rsa_pkcs1_sha512"), ("-tls1_2", "rsa_pss_rsae_sha384"),
                                ("-tls1_3", "rsa_pss_rsae_sha256")]:
            r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                                "-CAfile", str(pki.ca_cert), "-verify_return_error", version, "-sigalgs", sigalg,
                                "-ign_eof"], input="GET / HTTP/1.0\r\nHost: localhost\r\n\r\n",
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0 and "rsa signer page" in r.stdout, (version, sigalg, r.stdout + r.stderr)
        assert "MGS01301" not in h.log() and "MGS01006" not in h.log(), h.log()
    finally:
        h.remove()


def test_rsa_3072_and_ecdsa_keys(pki):
    h, port = serve(pki, "rsa3072")
    try:
        assert signer_of(pki, port) == "libcrypto"
        rc, out = gnutls_cli(port, pki.ca_cert)
        assert rc == 0 and "rsa signer page" in out, out
    finally:
        h.remove()
    # Only RSA keys change hands: an ECDSA key stays with GnuTLS.
    h, port = serve(pki, "p256", "libcrypto")
    try:
        assert signer_of(pki, port) == "gnutls"
    finally:
        h.remove()


def test_rsa_key_exchange_keeps_gnutls_decrypting(pki):
    """GnuTLSPriorities NORMAL allows TLS 1.2's RSA key exchange, in which
    the key decrypts the client's secret: auto leaves such a key to GnuTLS
    (constant-time decryption) and the exchange works; libcrypto is refused
    at configtest, naming the directive."""
    chain, key = pki.identity("rsa-signer-kx", "rsa2048")
    h = Httpd(extra_modules=["status"])
    try:
        port = free_ports(1)[0]
        h.docroot("site", body="rsa signer page\n")
        h.write_config(STATUS + vhost(port, chain, key, docroot=h.root / "site",
                                      extra="  GnuTLSPriorities NORMAL"), [port])
        h.start()
        assert signer_of(pki, port) == "gnutls"
        rc, out = gnutls_cli(port, pki.ca_cert, priority="NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA")
        assert rc == 0 and "rsa signer page" in out and "(TLS1.2-X.509)-(RSA)-" in out, out
        h.stop()
        h.write_config(STATUS + vhost(port, chain, key, docroot=h.root / "site",
                                      extra="  GnuTLSPriorities NORMAL\n  GnuTLSRSASigner libcrypto"), [port])
        rc, out = h.configtest()
        assert rc != 0, out
        assert "GnuTLSRSASigner libcrypto cannot serve TLS 1.2's RSA key exchange" in out, out
    finally:
        h.remove()


def test_bad_value_fails_configtest(pki):
    chain, key = pki.identity("rsa-signer-bad", "rsa2048")
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.write_config("GnuTLSRSASigner fastest\n" + vhost(port, chain, key), [port])
        rc, out = h.configtest()
        assert rc != 0, out
        assert "GnuTLSRSASigner" in out and "must be auto, libcrypto or gnutls, not 'fastest'" in out, out
    finally:
        h.remove()

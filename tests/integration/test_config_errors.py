"""Bad input fails `apache2 -t` (configtest) and startup with one message
naming the virtual host, the directive and what is wrong; a PIN or pass
phrase never appears in any output or log."""
import os

import pytest

from harness.httpd import Httpd, vhost
from harness.pki import Pki
from harness.ports import free_ports

SECRET = "Sup3r-Secret-Passphrase-91"


@pytest.fixture(scope="module")
def good(pki):
    return pki.identity("cfg-good", "p256", cn="cfg.test")


@pytest.fixture
def httpd():
    h = Httpd()
    yield h
    h.remove()


def configure(h, directives):
    port = free_ports(1)[0]
    h.write_config(f"<VirtualHost 127.0.0.1:{port}>\n  ServerName broken.example\n  GnuTLSEnable on\n"
                   f"{directives}\n</VirtualHost>", [port])


def error_line(output, needle):
    lines = [l for l in output.splitlines() if needle in l]
    assert len(lines) == 1, f"expected one line with {needle!r}:\n{output}"
    return lines[0]


def assert_refused(h, directive, *phrases):
    rc, out = h.configtest()
    assert rc != 0, out
    line = error_line(out, directive + ":")
    assert "broken.example" in line or "VirtualHost 127.0.0.1" in line, line
    # Startup's check of a server names the line MGS01003; a syntax error is Apache's own.
    assert "MGS01003: " in line or "Syntax error" in out, line
    for p in phrases:
        assert p in line, f"{p!r} not in {line!r}"
    # Startup refuses the same way.
    rc, out2 = h.start(expect_ok=False)
    assert rc != 0
    assert directive in out2 + h.log()
    return line


def test_missing_key_file(httpd, good, tmp_path):
    chain, _ = good
    missing = tmp_path / "no-such.key"
    configure(httpd, f"  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile {missing}")
    assert_refused(httpd, "GnuTLSKeyFile", str(missing), "No such file or directory")


def test_missing_certificate_file(httpd, good, tmp_path):
    _, key = good
    missing = tmp_path / "no-such.pem"
    configure(httpd, f"  GnuTLSCertificateFile {missing}\n  GnuTLSKeyFile {key}")
    assert_refused(httpd, "GnuTLSCertificateFile", str(missing), "No such file or directory")


def test_directory_instead_of_key(httpd, good, tmp_path):
    chain, _ = good
    configure(httpd, f"  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile {tmp_path}")
    assert_refused(httpd, "GnuTLSKeyFile", str(tmp_path), "Is a directory")


def test_key_of_another_certificate(httpd, good, pki):
    chain, _ = good
    other = pki.key("cfg-other", "p256")
    configure(httpd, f"  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile {other}")
    assert_refused(httpd, "GnuTLSKeyFile", str(other), "does not match the certificate", str(chain))


def test_not_a_certificate(httpd, good):
    _, key = good
    configure(httpd, f"  GnuTLSCertificateFile {key}\n  GnuTLSKeyFile {key}")
    assert_refused(httpd, "GnuTLSCertificateFile", str(key), "no PEM certificate")


def test_wrong_passphrase(httpd, pki):
    chain, key = pki.identity("cfg-enc", "rsa2048")
    enc = pki.reencode(key, "cfg-enc.p8", "pkcs8", "-topk8", "-v2", "aes-256-cbc",
                       "-passout", "pass:right-one")
    configure(httpd, f"  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile {enc}\n  GnuTLSPIN {SECRET}")
    line = assert_refused(httpd, "GnuTLSKeyFile", str(enc), "wrong passphrase")
    assert SECRET not in line


def test_encrypted_key_without_pin(httpd, pki):
    chain, key = pki.identity("cfg-enc2", "p256")
    enc = pki.reencode(key, "cfg-enc2.p8", "pkcs8", "-topk8", "-v2", "aes-256-cbc",
                       "-passout", "pass:whatever")
    configure(httpd, f"  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile {enc}")
    assert_refused(httpd, "GnuTLSKeyFile", str(enc), "is encrypted")


def test_invalid_priority_string(httpd, good):
    chain, key = good
    configure(httpd, f"  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile {key}\n"
                     "  GnuTLSPriorities NORMAL:-RSA:+BOGUS-CIPHER")
    rc, out = httpd.configtest()
    assert rc != 0
    assert "Syntax error on line" in out
    line = error_line(out, "GnuTLSPriorities:")
    assert "invalid priority string at position 12" in line, line
    assert "+BOGUS-CIPHER" in line
    assert "VirtualHost 127.0.0.1" in line


def test_enable_without_key(httpd, good):
    chain, _ = good
    configure(httpd, f"  GnuTLSCertificateFile {chain}")
    assert_refused(httpd, "GnuTLSKeyFile", "no private key")


def test_pin_and_pin_source_conflict(httpd, good):
    chain, key = good
    configure(httpd, f"  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile {key}\n"
                     f"  GnuTLSPIN {SECRET}\n  GnuTLSPINSource env:NOPE")
    rc, out = httpd.configtest()
    assert rc != 0
    assert "GnuTLSPINSource" in out and "cannot be combined with GnuTLSPIN" in out
    assert SECRET not in out


def test_pin_never_logged(pki):
    """A working server with an encrypted key: the passphrase appears in no
    output and no log, even at LogLevel trace8."""
    chain, key = pki.identity("cfg-secret", "p256")
    enc = pki.reencode(key, "cfg-secret.p8", "pkcs8", "-topk8", "-v2", "aes-256-cbc",
                       "-passout", f"pass:{SECRET}")
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.write_config("LogLevel trace8\n" + vhost(port, chain, enc, extra=f"  GnuTLSPIN {SECRET}"), [port])
        rc, out = h.configtest()
        assert rc == 0, out
        h.start()
        from harness.clients import gnutls_cli
        rc, cli = gnutls_cli(port, pki.ca_cert)
        assert rc == 0, cli
        stopped = h.stop()
        assert SECRET not in out + stopped + h.all_logs()
    finally:
        h.remove()

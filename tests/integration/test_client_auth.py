"""Client certificates: GnuTLSClientVerify ignore/request/require at virtual
host and directory level, GnuTLSClientCAFile, GnuTLSClientKeyPurpose, and the
SSL_CLIENT_* variables; TLS 1.3 post-handshake authentication for
directories, and no TLS 1.2 renegotiation."""
import os
import re
import subprocess
import time

import pytest

from harness.clients import gnutls_cli
from harness.httpd import Httpd
from harness.ports import free_ports

CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
env | grep -E '^SSL_CLIENT' | sort
"""


@pytest.fixture(scope="module")
def certs(pki):
    stranger_ca = pki.other_ca("stranger-ca")
    return {
        "good": pki.client("alice", email="alice@example.org"),
        "no-eku": pki.client("bob", eku=None),
        "wrong-eku": pki.client("carol", eku="tls_www_server"),
        "expired": pki.client("dave", dates=("2020-01-01 00:00:00", "2021-01-01 00:00:00")),
        "untrusted": pki.client("eve", ca=stranger_ca),
        "revoked": pki.client("mallory"),
    }


@pytest.fixture(scope="module")
def server(pki, certs):
    chain, key = pki.identity("clientauth", "p256")
    # The CA file carries the CRL that revokes mallory's certificate.
    ca_with_crl = pki.root / "client-ca-with-crl.pem"
    ca_with_crl.write_text(pki.ca_cert.read_text() + pki.crl("clients", [certs["revoked"][0]]).read_text())
    h = Httpd(extra_modules=["cgid", "alias"])
    ports = dict(zip(["require", "request", "ignore"], free_ports(3)))
    cgi = h.docroot("cgi-bin")
    (cgi / "env.cgi").write_text(CGI)
    os.chmod(cgi / "env.cgi", 0o755)
    docroot = h.docroot("htdocs", body="open\n")
    secure = docroot / "secure"
    secure.mkdir()
    (secure / "index.html").write_text("secret\n")
    os.chmod(secure, 0o755)
    os.chmod(secure / "index.html", 0o644)
    body = [f"ScriptSock {h.root}/run/cgid.sock"]
    for mode, port in ports.items():
        body.append(f"""<VirtualHost 127.0.0.1:{port}>
  GnuTLSEnable on
  GnuTLSCertificateFile {chain}
  GnuTLSKeyFile {key}
  GnuTLSClientCAFile {ca_with_crl}
  GnuTLSClientVerify {mode}
  GnuTLSExportCertificates on
  DocumentRoot {docroot}
  ScriptAlias /cgi-bin/ {cgi}/
  <Location /secure>
    GnuTLSClientVerify require
  </Location>
</VirtualHost>""")
    h.write_config("\n".join(body), ports.values())
    h.start()
    yield h, ports
    h.remove()


def fetch(port, pki, path, cert=None, version="1.3"):
    cmd = ["curl", "-sS", "--max-time", "20", "--cacert", str(pki.ca_cert), "--resolve",
           f"localhost:{port}:127.0.0.1", "-w", "\n%{http_code}", f"--tlsv{version}", "--tls-max", version]
    if cert:
        cmd += ["--cert", str(cert[0]), "--key", str(cert[1])]
    r = subprocess.run(cmd + [f"https://localhost:{port}{path}"], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def client_env(out):
    return dict(re.findall(r"^(SSL_CLIENT_[A-Z_0-9]+)=(.*)$", out, re.M))


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("which", ["good", "no-eku"])
def test_require_accepts_valid_certificates(server, pki, certs, which, version):
    h, ports = server
    rc, out, err = fetch(ports["require"], pki, "/cgi-bin/env.cgi", certs[which], version)
    assert rc == 0 and out.endswith("\n200"), out + err
    env = client_env(out)
    assert env["SSL_CLIENT_VERIFY"] == "SUCCESS"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_require_refuses_a_handshake_without_certificate(server, pki, version):
    h, ports = server
    rc, out, err = fetch(ports["require"], pki, "/", None, version)
    assert rc != 0 and not out.endswith("\n200"), out
    assert "MGS01306:" in h.log()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("which", ["wrong-eku", "expired", "untrusted", "revoked"])
def test_require_answers_403_to_a_certificate_that_does_not_verify(server, pki, certs, which, version):
    """mod_gnutls: the handshake completes, every request gets 403 and the
    error log says why."""
    h, ports = server
    for path in ("/", "/cgi-bin/env.cgi"):
        rc, out, err = fetch(ports["require"], pki, path, certs[which], version)
        assert rc == 0 and out.endswith("\n403"), out + err
        assert "SSL_CLIENT" not in out
    assert re.search(r"MGS01305: .*access to /cgi-bin/env.cgi denied: .*", h.log()), h.log()


@pytest.mark.parametrize("which,verify", [(None, "NONE"), ("good", "SUCCESS"), ("untrusted", "FAILED"),
                                          ("expired", "FAILED"), ("wrong-eku", "FAILED"),
                                          ("revoked", "FAILED")])
def test_request_lets_everyone_in_and_says_how_it_went(server, pki, certs, which, verify):
    h, ports = server
    rc, out, err = fetch(ports["request"], pki, "/cgi-bin/env.cgi", certs.get(which))
    assert rc == 0 and out.endswith("\n200"), out + err
    assert client_env(out).get("SSL_CLIENT_VERIFY") == verify, out


def test_client_variables(server, pki, certs):
    h, ports = server
    rc, out, err = fetch(ports["request"], pki, "/cgi-bin/env.cgi", certs["good"], "1.2")
    env = client_env(out)
    assert env["SSL_CLIENT_S_DN"] == "CN=alice,O=Test Users", env
    assert env["SSL_CLIENT_I_DN"] == "CN=mod_gnutls test CA"
    assert env["SSL_CLIENT_S_AN0"] == "RFC822NAME:alice@example.org"
    assert re.fullmatch(r"[0-9A-F]+", env["SSL_CLIENT_M_SERIAL"])
    assert env["SSL_CLIENT_M_VERSION"] == "3"
    assert env["SSL_CLIENT_A_KEY"] == "EC/ECDSA"
    assert env["SSL_CLIENT_V_END"].endswith("GMT")
    assert 28 <= int(env["SSL_CLIENT_V_REMAIN"]) <= 30
    assert env["SSL_CLIENT_CERT_TYPE"] == "X.509"
    assert env["SSL_CLIENT_CERT"].startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_directory_require(server, pki, certs, version):
    h, ports = server
    # Certificate requested in the handshake (vhost "request"): the directory lets it in.
    rc, out, err = fetch(ports["request"], pki, "/secure/", certs["good"], version)
    assert out.endswith("secret\n\n200"), out
    rc, out, err = fetch(ports["request"], pki, "/secure/", None, version)
    assert out.endswith("\n403"), out
    rc, out, err = fetch(ports["request"], pki, "/secure/", certs["untrusted"], version)
    assert out.endswith("\n403"), out
    rc, out, err = fetch(ports["request"], pki, "/", None, version)
    assert out.endswith("open\n\n200"), out
    # vhost "ignore": no certificate was asked for in the handshake. curl
    # (OpenSSL) offers TLS 1.3 post-handshake authentication, so it is asked
    # then; TLS 1.2 is never renegotiated: 403.
    rc, out, err = fetch(ports["ignore"], pki, "/secure/", certs["good"], version)
    assert out.endswith("secret\n\n200" if version == "1.3" else "\n403"), out
    assert "access to /secure/ denied" in h.log()


def test_client_key_purpose_directive(pki, certs):
    """GnuTLSClientKeyPurpose changes the EKU required: with serverAuth, the
    serverAuth-only certificate passes and the clientAuth one fails."""
    chain, key = pki.identity("purpose", "p256")
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.docroot("htdocs", body="purpose\n")
        h.write_config(f"""<VirtualHost 127.0.0.1:{port}>
  GnuTLSEnable on
  GnuTLSCertificateFile {chain}
  GnuTLSKeyFile {key}
  GnuTLSClientCAFile {pki.ca_cert}
  GnuTLSClientVerify require
  GnuTLSClientKeyPurpose 1.3.6.1.5.5.7.3.1
</VirtualHost>""", [port])
        h.start()
        rc, out, _ = fetch(port, pki, "/", certs["wrong-eku"])
        assert out.endswith("purpose\n\n200"), out
        rc, out, _ = fetch(port, pki, "/", certs["good"])
        assert out.endswith("\n403"), out
        assert "key purpose" in h.log().lower() or "denied" in h.log(), h.log()
    finally:
        h.remove()


def pha_client(port, pki, cert, post_handshake=True, version="1.3"):
    cmd = ["gnutls-cli", "--port", str(port), "--x509cafile", str(pki.ca_cert),
           "--x509certfile", str(cert[0]), "--x509keyfile", str(cert[1]),
           "--priority", f"NORMAL:-VERS-ALL:+VERS-TLS{version}", "--sni-hostname", "localhost",
           "--verify-hostname", "localhost"]
    if post_handshake:
        cmd.append("--post-handshake-auth")
    # gnutls-cli closes the session when its stdin ends, which would cut a
    # re-authentication short: keep stdin open until the answer is in.
    p = subprocess.Popen(cmd + ["127.0.0.1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    p.stdin.write("GET /secure/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
    p.stdin.flush()
    time.sleep(1.5)
    out, _ = p.communicate(timeout=30)
    return out


def test_tls13_post_handshake_authentication(server, pki, certs):
    """vhost "ignore" asks nothing in the handshake; /secure requires a
    certificate: a TLS 1.3 client that offered post-handshake authentication
    is asked then and gets in; one that did not, or a TLS 1.2 client, gets 403."""
    h, ports = server
    out = pha_client(ports["ignore"], pki, certs["good"])
    assert "HTTP/1.1 200 OK" in out and "secret" in out, out + h.log()
    out = pha_client(ports["ignore"], pki, certs["untrusted"])
    assert "HTTP/1.1 403 Forbidden" in out, out
    out = pha_client(ports["ignore"], pki, certs["good"], post_handshake=False)
    assert "HTTP/1.1 403 Forbidden" in out, out
    out = pha_client(ports["ignore"], pki, certs["good"], version="1.2")
    assert "HTTP/1.1 403 Forbidden" in out, out


def test_client_key_in_a_token(server, pki, certs):
    """A smart-card-like client: its key lives in a SoftHSM2 token and
    gnutls-cli uses it through its pkcs11: URL."""
    from harness.softhsm import SoftHsm
    hsm = SoftHsm()
    try:
        hsm.token("card", "24242424")
        url, pub = hsm.generate("card", "24242424", "me")
        cert = pki.root / "card-client.crt"
        tmpl = pki.root / "card-client.tmpl"
        tmpl.write_text("cn = card holder\ntls_www_client\nsigning_key\nexpiration_days = 30\nserial = 777\n")
        from harness.pki import run
        run(["certtool", "--generate-certificate", "--load-pubkey", pub, "--load-ca-privkey", pki.ca_key,
             "--load-ca-certificate", pki.ca_cert, "--template", tmpl, "--outfile", cert])
        h, ports = server
        env = dict(os.environ, GNUTLS_PIN="24242424", **hsm.env)
        r = subprocess.run(["gnutls-cli", "--port", str(ports["require"]), "--x509cafile", str(pki.ca_cert),
                            "--x509certfile", str(cert), "--x509keyfile", url + ";type=private",
                            "--sni-hostname", "localhost", "--verify-hostname", "localhost", "127.0.0.1"],
                           input="GET /cgi-bin/env.cgi HTTP/1.0\r\nHost: localhost\r\n\r\n",
                           capture_output=True, text=True, timeout=30, env=env)
        out = r.stdout + r.stderr
        assert "SSL_CLIENT_VERIFY=SUCCESS" in out, out
        assert "SSL_CLIENT_S_DN=CN=card holder" in out, out
    finally:
        hsm.remove()

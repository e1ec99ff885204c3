"""SSL_* variables: exported to CGI, and visible to mod_rewrite (%{HTTPS},
%{SSL:...}), mod_headers, mod_log_config (%{...}x) and ap_expr."""
import os
import re

import pytest

from harness.clients import curl
from harness.httpd import Httpd
from harness.ports import free_ports

CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
env | grep -E '^(HTTPS|SSL_)' | sort
"""


@pytest.fixture(scope="module")
def server(pki):
    chain, key = pki.identity("vars", "p256", cn="vars.test")
    h = Httpd(extra_modules=["cgid", "rewrite", "headers", "alias"])
    port = free_ports(1)[0]
    cgi_dir = h.docroot("cgi-bin")
    (cgi_dir / "env.cgi").write_text(CGI)
    os.chmod(cgi_dir / "env.cgi", 0o755)
    h.docroot("htdocs", body="vars page\n")
    h.write_config(f"""
ScriptSock {h.root}/run/cgid.sock
LogFormat "%h proto=%{{SSL_PROTOCOL}}x cipher=%{{SSL_CIPHER}}x https=%{{HTTPS}}x" tls
CustomLog {h.root}/logs/access.log tls
<VirtualHost 127.0.0.1:{port}>
  ServerName localhost
  GnuTLSEnable on
  GnuTLSCertificateFile {chain}
  GnuTLSKeyFile {key}
  GnuTLSExportCertificates on
  ScriptAlias /cgi-bin/ {cgi_dir}/
  RewriteEngine on
  RewriteCond %{{HTTPS}} =on
  RewriteRule ^/is-https$ /index.html [L]
  RewriteCond %{{SSL:SSL_PROTOCOL}} ^TLS1\\.3$
  RewriteRule ^/is-tls13$ /index.html [L]
  Header always set X-TLS-Protocol "%{{SSL_PROTOCOL}}s"
  Header always set X-Expr "expr=%{{SSL:SSL_CIPHER}}"
</VirtualHost>""", [port])
    h.start()
    yield h, port
    h.remove()


def cgi_env(server, pki, version="1.3"):
    h, port = server
    rc, out, err = curl(port, pki.ca_cert, version, path="/cgi-bin/env.cgi")
    assert rc == 0 and out.endswith("\n200"), out + err + h.log()
    env = {}
    key = None
    for line in out.rsplit("\n", 1)[0].splitlines():
        m = re.match(r"^([A-Z_0-9]+)=(.*)$", line)
        if m:
            key = m.group(1)
            env[key] = m.group(2)
        elif key:  # continuation of a multi-line value (PEM)
            env[key] += "\n" + line
    return env


@pytest.mark.parametrize("version,proto", [("1.2", "TLS1.2"), ("1.3", "TLS1.3")])
def test_cgi_sees_the_variables(server, pki, version, proto):
    env = cgi_env(server, pki, version)
    assert env["HTTPS"] == "on"
    assert env["SSL_PROTOCOL"] == proto
    assert env["SSL_VERSION_LIBRARY"].startswith("GnuTLS/3.")
    assert env["SSL_VERSION_INTERFACE"].startswith("mod_gnutls/")
    assert env["SSL_CIPHER"] and "AES" in env["SSL_CIPHER"] or "CHACHA" in env["SSL_CIPHER"]
    assert env["SSL_COMPRESS_METHOD"] == "NULL"
    assert int(env["SSL_CIPHER_USEKEYSIZE"]) in (128, 256)
    assert env["SSL_CIPHER_ALGKEYSIZE"] == env["SSL_CIPHER_USEKEYSIZE"]
    assert env["SSL_CIPHER_EXPORT"] == "False"
    assert re.fullmatch(r"[0-9A-F]+", env["SSL_SESSION_ID"])
    assert env["SSL_CLIENT_VERIFY"] == "NONE"
    assert env["SSL_SERVER_S_DN"] == "CN=vars.test"
    assert env["SSL_SERVER_I_DN"] == "CN=mod_gnutls test CA"
    assert env["SSL_SERVER_S_AN0"] == "DNSNAME:localhost"
    assert env["SSL_SERVER_S_AN1"] == "DNSNAME:vars.test"
    assert env["SSL_SERVER_M_VERSION"] == "3"
    assert re.fullmatch(r"[0-9A-F]+", env["SSL_SERVER_M_SERIAL"])
    assert env["SSL_SERVER_A_KEY"] == "EC/ECDSA"
    assert env["SSL_SERVER_A_SIG"].startswith("ECDSA-SHA")
    assert re.fullmatch(r"[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4} GMT", env["SSL_SERVER_V_START"])
    assert env["SSL_SERVER_V_END"].endswith("GMT")
    assert env["SSL_SERVER_CERT_TYPE"] == "X.509"
    assert env["SSL_SERVER_CERT"].startswith("-----BEGIN CERTIFICATE-----")
    assert env["SSL_TLS_SNI"] == "localhost"
    assert "SSL_DH_PRIME_BITS" not in env  # ECDHE, not DHE


def test_rewrite_headers_and_expr(server, pki):
    h, port = server
    for path in ("/is-https", "/is-tls13"):
        rc, out, err = curl(port, pki.ca_cert, "1.3", path=path)
        assert out.endswith("\n200") and "vars page" in out, (path, out)
    rc, out, err = curl(port, pki.ca_cert, "1.2", path="/is-tls13")
    assert out.endswith("\n404"), out
    rc, out, err = curl(port, pki.ca_cert, "1.3", extra=["-D", "-"])
    assert "X-TLS-Protocol: TLS1.3" in out, out
    assert re.search(r"X-Expr: TLS_\w+", out), out


def test_log_format_variables(server, pki):
    h, port = server
    curl(port, pki.ca_cert, "1.2")
    import time
    time.sleep(0.3)
    log = (h.root / "logs" / "access.log").read_text()
    assert re.search(r"proto=TLS1\.2 cipher=\S+ https=on", log), log

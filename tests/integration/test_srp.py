"""SRP password authentication with srptool files: an SRP-only virtual host
and SRP + X.509 on one host, as in the mod_gnutls README, start and serve;
a wrong password is refused and never logged; missing files fail
configtest; alice logs in with gnutls-cli and with curl (OpenSSL's SRP),
and CGI scripts see her name in SSL_SRP_USER."""
import os
import re
import subprocess

import pytest

import shutil

from harness.httpd import Httpd, world_readable_dir
from harness.ports import free_ports

PASSWORD = "Srp-Pa55word-73"
CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "SSL_SRP_USER=$SSL_SRP_USER"
"""


@pytest.fixture(scope="module")
def srp_files(pki):
    # GnuTLS reads the SRP files in the child processes, as the User: they
    # must be readable by www-data, unlike key files.
    d = world_readable_dir("mgs-srp-")
    conf = d / "tpasswd.conf"
    passwd = d / "tpasswd"
    subprocess.run(["srptool", "--create-conf", str(conf)], check=True, capture_output=True, timeout=60)
    # Without a terminal srptool reads the password once from stdin.
    r = subprocess.run(["srptool", "--passwd", str(passwd), "--passwd-conf", str(conf), "-u", "alice"],
                       input=f"{PASSWORD}\n", capture_output=True, text=True, timeout=60)
    assert passwd.exists() and "alice:" in passwd.read_text(), r.stdout + r.stderr
    os.chmod(conf, 0o644)
    os.chmod(passwd, 0o644)
    yield passwd, conf
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def server(pki, srp_files):
    passwd, conf = srp_files
    chain, key = pki.identity("srp-x509", "rsa2048")
    h = Httpd(extra_modules=["cgid", "alias"])
    ports = free_ports(2)
    cgi = h.docroot("cgi-bin")
    (cgi / "env.cgi").write_text(CGI)
    os.chmod(cgi / "env.cgi", 0o755)
    h.docroot("htdocs", body="srp page\n")
    h.write_config(f"""ScriptSock {h.root}/run/cgid.sock
<VirtualHost 127.0.0.1:{ports[0]}>
  # This virtual host enables SRP authentication
  GnuTLSEnable on
  GnuTLSPriorities NORMAL:+SRP
  GnuTLSSRPPasswdFile {passwd}
  GnuTLSSRPPasswdConfFile {conf}
  ScriptAlias /cgi-bin/ {cgi}/
</VirtualHost>
<VirtualHost 127.0.0.1:{ports[1]}>
  # This server enables SRP and X.509 authentication.
  GnuTLSEnable on
  GnuTLSCertificateFile {chain}
  GnuTLSKeyFile {key}
  GnuTLSSRPPasswdFile {passwd}
  GnuTLSSRPPasswdConfFile {conf}
  ScriptAlias /cgi-bin/ {cgi}/
</VirtualHost>""", ports)
    h.start()
    yield h, ports
    h.remove()


def srp_client(port, user, password, path="/cgi-bin/env.cgi"):
    r = subprocess.run(["gnutls-cli", "--port", str(port), "--srpusername", user, "--srppasswd", password,
                        "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+SRP:+SRP-RSA", "--insecure", "127.0.0.1"],
                       input=f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n", capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("which", [0, 1])
def test_login_with_gnutls_cli(server, which):
    h, ports = server
    rc, out = srp_client(ports[which], "alice", PASSWORD)
    assert rc == 0, out + h.log()
    assert "SSL_SRP_USER=alice" in out, out
    # The SRP-only host negotiates plain SRP; the X.509 host may use SRP-RSA.
    assert re.search(r"\(SRP(-RSA)?\)", out), out
    assert PASSWORD not in h.all_logs()


@pytest.mark.parametrize("which", [0, 1])
def test_login_with_curl(server, pki, which):
    h, ports = server
    # curl (OpenSSL) speaks TLS-SRP too; the X.509 host's certificate is checked.
    tls = ["--cacert", str(pki.ca_cert)] if which else ["-k"]
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "--tlsv1.2", "--tls-max", "1.2", "--tlsauthtype", "SRP",
                        "--tlsuser", "alice", "--tlspassword", PASSWORD, *tls,
                        "--resolve", f"localhost:{ports[which]}:127.0.0.1",
                        f"https://localhost:{ports[which]}/cgi-bin/env.cgi"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr + h.log()
    assert "SSL_SRP_USER=alice" in r.stdout, r.stdout


@pytest.mark.parametrize("which", [0, 1])
def test_wrong_password_refused_and_not_logged(server, which):
    h, ports = server
    rc, out = srp_client(ports[which], "alice", "not-the-password")
    assert rc != 0 and "SSL_SRP_USER" not in out, out
    assert "handshake failed" in h.log()
    assert "not-the-password" not in h.all_logs() and PASSWORD not in h.all_logs()


def test_x509_still_works_beside_srp(server, pki):
    h, ports = server
    from harness.clients import gnutls_cli
    # GnuTLS turns TLS 1.3 off where SRP is enabled: X.509 clients get TLS 1.2.
    rc, out = gnutls_cli(ports[1], pki.ca_cert, "1.2", request="GET /cgi-bin/env.cgi HTTP/1.0\r\n\r\n")
    assert rc == 0, out
    assert "(TLS1.2" in out and "SSL_SRP_USER=\n" in out, out


def test_missing_srp_file_fails_configtest(pki, srp_files, tmp_path):
    passwd, conf = srp_files
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.write_config(f"""<VirtualHost 127.0.0.1:{port}>
  ServerName srp.test
  GnuTLSEnable on
  GnuTLSSRPPasswdFile {tmp_path}/no-such-tpasswd
  GnuTLSSRPPasswdConfFile {conf}
</VirtualHost>""", [port])
        rc, out = h.configtest()
        assert rc != 0
        assert "GnuTLSSRPPasswdFile" in out and "No such file or directory" in out and "srp.test" in out, out
    finally:
        h.remove()

"""Client-certificate isolation between virtual hosts that share one wildcard
certificate: `open` asks nothing, `secure` has GnuTLSClientVerify require.
Every test tries a way into `secure` without a verified client certificate
(another SNI, no SNI, another Host, HTTP/2 :authority, a second request on a
kept-alive connection, a TLS 1.2 cached session, a TLS 1.2 ticket, a TLS 1.3
ticket, a session from a pool member, a certificate that does not verify)
and asserts that the secure content never comes back; and that what must
keep working (compatible virtual hosts sharing a connection, a resumed
session of a verified client) does."""
import os
import re
import shutil
import subprocess

import pytest

from harness.cache_servers import CacheServer
from harness.httpd import Httpd, world_readable_dir
from harness.ports import free_ports

SECRET = "SECRET-CONTENT-7f3a"
OPEN = "open content"
TWIN = "twin content"
DENIED = "DENIED-PAGE: this site needs a client certificate"
DOMAIN = "iso.test"
MODULES = ["cgid", "alias", "http2", "access_compat", "auth_basic", "authn_core", "authn_file", "authz_user",
           "cache", "cache_disk", "expires"]
CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo SECRET-CONTENT-7f3a
env | grep -E '^SSL_CLIENT' | sort
"""


def name(label):
    return f"{label}.{DOMAIN}"


@pytest.fixture(scope="module")
def certs(pki):
    stranger = pki.other_ca("iso-stranger-ca")
    return {
        "good": pki.client("iso-alice"),
        "untrusted": pki.client("iso-eve", ca=stranger),
        "revoked": pki.client("iso-mallory"),
        "wrong-eku": pki.client("iso-carol", eku="tls_www_server"),
        "stranger-ca": stranger,
    }


@pytest.fixture(scope="module")
def srp_files():
    d = world_readable_dir("mgs-iso-srp-")
    conf, passwd = d / "tpasswd.conf", d / "tpasswd"
    subprocess.run(["srptool", "--create-conf", str(conf)], check=True, capture_output=True, timeout=60)
    subprocess.run(["srptool", "--passwd", str(passwd), "--passwd-conf", str(conf), "-u", "alice"],
                   input="Srp-Pa55word-73\n", capture_output=True, text=True, timeout=60, check=True)
    os.chmod(conf, 0o644)
    os.chmod(passwd, 0o644)
    yield passwd, conf
    shutil.rmtree(d, ignore_errors=True)


def secure_site(h):
    d = h.docroot("secure-site", body=SECRET + "\n")
    (d / "denied.html").write_text(DENIED + "\n")
    os.chmod(d / "denied.html", 0o644)
    cgi = h.docroot("cgi-bin")
    (cgi / "env.cgi").write_text(CGI)
    os.chmod(cgi / "env.cgi", 0o755)
    return d, cgi


def vhosts(port, chain, key, ca_crl, htpasswd=None, srp=None, other_identity=None, stranger_ca=None,
           tickets="on"):
    """The virtual hosts on one port: `open` first (the default for clients
    without SNI), then every variant of it and of `secure`."""
    open_dir, twin_dir, secure_dir, cgi = "{open}", "{twin}", "{secure}", "{cgi}"

    def block(label, docroot, lines=(), c=chain, k=key):
        body = [f"<VirtualHost 127.0.0.1:{port}>", f"  ServerName {name(label)}", "  GnuTLSEnable on",
                f"  GnuTLSCertificateFile {c}", f"  GnuTLSKeyFile {k}", f"  GnuTLSSessionTickets {tickets}",
                f"  DocumentRoot {docroot}", "  Protocols h2 http/1.1", *[f"  {x}" for x in lines],
                "</VirtualHost>"]
        return "\n".join(body)

    secure_lines = ["GnuTLSClientVerify require", f"GnuTLSClientCAFile {ca_crl}", "ErrorDocument 403 /denied.html",
                    f"ScriptAlias /cgi-bin/ {cgi}/",
                    # Error documents of other refusals must not become a way in.
                    "ErrorDocument 421 /index.html", "ErrorDocument 404 /index.html",
                    # A directory cannot lower the virtual host's require.
                    "<Location /weak>", "  GnuTLSClientVerify request", "</Location>",
                    # mod_cache answers before Apache's access checks.
                    "CacheEnable disk /", "CacheQuickHandler on", "ExpiresActive On",
                    'ExpiresDefault "access plus 10 minutes"']
    if htpasswd:
        # Satisfy Any: a password would do instead of the host rule; it must
        # not do instead of the client certificate.
        secure_lines += ["<Location /satisfy>", "  AuthType Basic", "  AuthName iso", f"  AuthUserFile {htpasswd}",
                         "  Require valid-user", "  Order deny,allow", "  Deny from all", "  Satisfy Any",
                         "</Location>"]
    blocks = [
        block("open", open_dir),
        block("twin", twin_dir),  # the same settings as open: may share its connections
        block("prio", open_dir, ["GnuTLSPriorities NORMAL:-VERS-TLS1.3:+VERS-TLS1.2"]),
        block("request", open_dir, ["GnuTLSClientVerify request", f"GnuTLSClientCAFile {ca_crl}"]),
        block("secure", secure_dir, secure_lines),
        block("securetwin", secure_dir, secure_lines),  # the same settings as secure
        block("secure-otherca", secure_dir, [x if not x.startswith("GnuTLSClientCAFile") else
                                             f"GnuTLSClientCAFile {stranger_ca}" for x in secure_lines]),
        block("secure-nocrl", secure_dir, [x if not x.startswith("GnuTLSClientCAFile") else
                                           f"GnuTLSClientCAFile {ca_crl.parent / 'ca.pem'}" for x in secure_lines]),
        block("secure-purpose", secure_dir, secure_lines + ["GnuTLSClientKeyPurpose 1.3.6.1.5.5.7.3.4"]),
        block("secure-request", secure_dir, [x if x != "GnuTLSClientVerify require" else
                                             "GnuTLSClientVerify request" for x in secure_lines]),
    ]
    if other_identity:
        blocks.append(block("otherkey", open_dir, c=other_identity[0], k=other_identity[1]))
    if srp:
        blocks.append(block("srp", open_dir, [f"GnuTLSSRPPasswdFile {srp[0]}", f"GnuTLSSRPPasswdConfFile {srp[1]}"]))
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def server(pki, certs, srp_files):
    chain, key = pki.identity("iso", "p256", cn=name("open"), dns_names=[f"*.{DOMAIN}"])
    other = pki.identity("iso-other", "p256", cn=name("otherkey"), dns_names=[f"*.{DOMAIN}"])
    ca_crl = pki.root / "iso-ca-with-crl.pem"
    ca_crl.write_text(pki.ca_cert.read_text() + pki.crl("iso-clients", [certs["revoked"][0]]).read_text())
    h = Httpd(extra_modules=MODULES + ["socache_shmcb"])
    secure_dir, cgi = secure_site(h)
    (secure_dir / "weak").mkdir()
    (secure_dir / "weak" / "index.html").write_text(SECRET + " weak\n")
    os.chmod(secure_dir / "weak", 0o755)
    os.chmod(secure_dir / "weak" / "index.html", 0o644)
    cache_root = h.docroot("cache")
    os.system(f"chown www-data {cache_root} 2>/dev/null")
    (secure_dir / "satisfy").mkdir()
    (secure_dir / "satisfy" / "index.html").write_text(SECRET + " satisfy\n")
    os.chmod(secure_dir / "satisfy", 0o755)
    os.chmod(secure_dir / "satisfy" / "index.html", 0o644)
    htpasswd = h.root / "htpasswd"
    subprocess.run(["htpasswd", "-bc", str(htpasswd), "alice", "pw-alice"], check=True, capture_output=True)
    os.chmod(htpasswd, 0o644)
    dirs = {"open": h.docroot("open-site", body=OPEN + "\n"), "twin": h.docroot("twin-site", body=TWIN + "\n"),
            "secure": secure_dir, "cgi": cgi}
    tickets_port, cache_port = free_ports(2)
    body = [f"ScriptSock {h.root}/run/cgid.sock", f"GnuTLSCache shmcb:{h.root}/run/gnutls_cache(512000)",
            "LogLevel info", f"CacheRoot {cache_root}"]
    for port, tickets in ((tickets_port, "on"), (cache_port, "off")):
        body.append(vhosts(port, chain, key, ca_crl, htpasswd=htpasswd, srp=srp_files, other_identity=other,
                           stranger_ca=certs["stranger-ca"][0], tickets=tickets).format(**dirs))
    h.write_config("\n".join(body), [tickets_port, cache_port])
    h.start()
    yield {"h": h, "tickets": tickets_port, "cache": cache_port, "cache_root": cache_root}
    h.remove()


def curl(pki, port, sni, host=None, path="/", cert=None, version="1.3", extra=()):
    """sni=None connects to 127.0.0.1 (no SNI; the certificate names the address)."""
    cmd = ["curl", "-sS", "--max-time", "20", "--cacert", str(pki.ca_cert), "-w", "\n%{http_code}",
           f"--tlsv{version}", "--tls-max", version, *extra]
    if sni:
        cmd += ["--resolve", f"{sni}:{port}:127.0.0.1"]
    if host:
        cmd += ["-H", f"Host: {host}"]
    if cert:
        cmd += ["--cert", str(cert[0]), "--key", str(cert[1])]
    cmd.append(f"https://{sni or '127.0.0.1'}:{port}{path}")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    body, _, code = r.stdout.rpartition("\n")
    return r.returncode, body, code, r.stderr


def s_client(pki, port, sni, host, version, sess_out=None, sess_in=None, cert=None, path="/"):
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(pki.ca_cert), "-ign_eof",
           "-tls1_2" if version == "1.2" else "-tls1_3"]
    cmd += ["-servername", sni] if sni else ["-noservername"]
    if sess_out:
        cmd += ["-sess_out", str(sess_out)]
    if sess_in:
        cmd += ["-sess_in", str(sess_in)]
    if cert:
        cmd += ["-cert", str(cert[0]), "-key", str(cert[1])]
    r = subprocess.run(cmd, input=f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n", capture_output=True, text=True,
                       timeout=30)
    return r.stdout + r.stderr


def status_of(out):
    m = re.search(r"HTTP/1\.[01] (\d{3}) ", out)  # s_client may print it behind a ticket dump
    return m.group(1) if m else None


def reused(out):
    return re.search(r"^Reused, TLSv1\.[23]", out, re.M) is not None


# --- Host header, SNI, HTTP/2 :authority -----------------------------------

@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("sni", [name("open"), name("twin"), None], ids=["sni-open", "sni-twin", "no-sni"])
def test_host_of_the_secure_vhost_on_an_open_handshake_is_misdirected(server, pki, sni, version):
    for host in (name("secure"), name("securetwin")):
        rc, body, code, err = curl(pki, server["tickets"], sni, host=host, version=version)
        assert SECRET not in body
        assert code == "421", (sni, host, code, body, err)
    assert "MGS01304: Host" in server["h"].log()


def test_gnutls_cli_with_another_sni_and_host(server, pki):
    for sni in (name("open"), name("request")):
        r = subprocess.run(["gnutls-cli", "--port", str(server["tickets"]), "--x509cafile", str(pki.ca_cert),
                            "--sni-hostname", sni, "--verify-hostname", sni, "127.0.0.1"],
                           input=f"GET / HTTP/1.0\r\nHost: {name('secure')}\r\n\r\n", capture_output=True,
                           text=True, timeout=30)
        assert SECRET not in r.stdout
        assert "HTTP/1.1 421" in r.stdout, r.stdout + r.stderr


def test_second_request_on_a_kept_alive_connection(server, pki):
    """One connection made for open: open's own requests and its twin's are
    served, the secure one is not (and Apache closes after a 421)."""
    reqs = "".join(f"GET / HTTP/1.1\r\nHost: {h}\r\n\r\n" for h in (name("open"), name("twin"), name("open")))
    reqs += f"GET / HTTP/1.1\r\nHost: {name('secure')}\r\n\r\n"
    r = subprocess.run(["gnutls-cli", "--port", str(server["tickets"]), "--x509cafile", str(pki.ca_cert),
                        "--sni-hostname", name("open"), "--verify-hostname", name("open"), "127.0.0.1"],
                       input=reqs, capture_output=True, text=True, timeout=30)
    assert SECRET not in r.stdout
    assert re.findall(r"^HTTP/1\.1 (\d{3})", r.stdout, re.M) == ["200", "200", "200", "421"], r.stdout
    assert TWIN in r.stdout


@pytest.mark.parametrize("sni,host", [(name("open"), name("twin")), (name("twin"), name("open")),
                                      (None, name("twin")), (name("secure"), name("securetwin"))])
def test_compatible_vhosts_share_a_connection(server, pki, certs, sni, host):
    cert = certs["good"] if "secure" in host else None
    for extra in ((), ("--http2",)):
        rc, body, code, err = curl(pki, server["tickets"], sni, host=host, cert=cert, extra=extra)
        assert code == "200", (sni, host, extra, body, err)
        assert {name("twin"): TWIN, name("open"): OPEN, name("securetwin"): SECRET}[host] in body


def test_http2_authority_of_another_vhost(server, pki, certs):
    """curl sends a Host header as HTTP/2 :authority on the same connection."""
    rc, body, code, err = curl(pki, server["tickets"], name("open"), host=name("secure"), extra=("--http2", "-v"))
    assert "HTTP/2 421" in err, err
    assert SECRET not in body and code == "421"
    rc, body, code, err = curl(pki, server["tickets"], name("open"), host=name("twin"), extra=("--http2", "-v"))
    assert "HTTP/2 200" in err and TWIN in body


@pytest.mark.parametrize("host", ["secure-otherca", "secure-nocrl", "secure-purpose", "secure-request"])
def test_vhosts_differing_in_client_auth_are_not_compatible(server, pki, certs, host):
    """A verified client of secure may not use its connection for a virtual
    host whose client CAs, CRLs, key purpose or verify mode differ."""
    rc, body, code, err = curl(pki, server["tickets"], name("secure"), host=name(host), cert=certs["good"])
    assert code == "421", (host, code, body, err)
    assert SECRET not in body
    # Its own connection works for each of them (a positive control).
    rc, body, code, err = curl(pki, server["tickets"], name(host), cert=certs["good"])
    if host in ("secure-otherca", "secure-purpose"):
        assert code != "200" and SECRET not in body, (host, code)  # alice's certificate is not good there
    else:
        assert code == "200" and SECRET in body, (host, code, body, err)


@pytest.mark.parametrize("host", ["prio", "otherkey", "srp", "request"])
def test_vhosts_differing_in_key_priorities_srp_or_verify_mode(server, pki, host):
    rc, body, code, err = curl(pki, server["tickets"], name("open"), host=name(host), version="1.2")
    assert code == "421", (host, code, body, err)
    rc, body, code, err = curl(pki, server["tickets"], name(host), version="1.2")
    assert code == "200" and OPEN in body, (host, code, body, err)


# --- No certificate, bad certificates --------------------------------------

@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_no_certificate_fails_the_handshake(server, pki, version):
    rc, body, code, err = curl(pki, server["tickets"], name("secure"), version=version)
    assert rc != 0 and SECRET not in body, (rc, body, err)
    assert "MGS01306:" in server["h"].log()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("which", ["untrusted", "revoked", "wrong-eku"])
def test_a_certificate_that_does_not_verify_gets_403_on_every_request(server, pki, certs, which, version):
    """mod_gnutls: the handshake completes, every request is refused with
    403, and ErrorDocument 403 can explain why."""
    for path in ("/", "/cgi-bin/env.cgi", "/index.html"):
        rc, body, code, err = curl(pki, server["tickets"], name("secure"), path=path, cert=certs[which],
                                   version=version)
        assert rc == 0, err
        assert code == "403" and SECRET not in body, (which, path, code, body)
        assert DENIED in body
    log = server["h"].log()
    assert re.search(rf"MGS01305: virtual host {re.escape(name('secure'))}.*denied", log), log


@pytest.mark.parametrize("which", ["good", "untrusted"])
def test_satisfy_any_does_not_replace_the_certificate(server, pki, certs, which):
    rc, body, code, err = curl(pki, server["tickets"], name("secure"), path="/satisfy/", cert=certs[which],
                               extra=("-u", "alice:pw-alice"))
    if which == "good":
        assert code == "200" and SECRET in body, (code, body, err)  # the password lets a verified client in
    else:
        assert code == "403" and SECRET not in body, (code, body, err)
    rc, body, code, err = curl(pki, server["tickets"], name("secure"), path="/satisfy/", cert=certs["good"])
    assert code == "401", (code, body)  # Satisfy Any still asks for the password


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_other_error_documents_directories_and_the_cache_are_no_way_in(server, pki, certs, version):
    port = server["tickets"]
    # A verified client fills the cache first.
    for path in ("/", "/weak/", "/index.html"):
        rc, body, code, err = curl(pki, port, name("secure"), path=path, cert=certs["good"], version=version)
        assert code == "200" and SECRET in body, (path, code, body, err)
    assert any(server["cache_root"].rglob("*.header")), "mod_cache stored nothing: the cache case tests nothing"
    for which in ("untrusted", "revoked"):
        for path in ("/", "/weak/", "/index.html", "/no-such-page", "/weak/no-such-page"):
            rc, body, code, err = curl(pki, port, name("secure"), path=path, cert=certs[which], version=version)
            assert code == "403" and SECRET not in body, (which, path, code, body)
    # 421 with secure's ErrorDocument 421 pointing at the secret page.
    rc, body, code, err = curl(pki, port, name("open"), host=name("secure"), version=version)
    assert code == "421" and SECRET not in body, (code, body)


def test_failed_verification_is_visible_on_a_request_vhost(server, pki, certs):
    rc, body, code, err = curl(pki, server["tickets"], name("secure-request"), path="/cgi-bin/env.cgi",
                               cert=certs["untrusted"])
    assert code == "200" and "SSL_CLIENT_VERIFY=FAILED" in body, body


# --- Resumed sessions ------------------------------------------------------

RESUMPTION_PATHS = [("tickets", "1.3"), ("tickets", "1.2"), ("cache", "1.2")]
RESUMPTION_IDS = ["tls13-ticket", "tls12-ticket", "tls12-cache"]


@pytest.mark.parametrize("kind,version", RESUMPTION_PATHS, ids=RESUMPTION_IDS)
@pytest.mark.parametrize("source", ["open", "twin", "request", "secure-request"])
def test_a_session_from_another_vhost_does_not_resume_on_secure(server, pki, certs, tmp_path, kind, version,
                                                                 source):
    port = server[kind]
    sess = tmp_path / "sess.pem"
    # secure-request: the client even showed a certificate, one that does not verify.
    cert = certs["untrusted"] if source == "secure-request" else None
    first = s_client(pki, port, name(source), name(source), version, sess_out=sess, cert=cert)
    assert status_of(first) == "200", first
    assert sess.exists() and sess.stat().st_size > 0
    for sni in (name("secure"), name("securetwin")):
        second = s_client(pki, port, sni, sni, version, sess_in=sess)
        assert SECRET not in second, second
        assert not reused(second), second
    # And without SNI, landing on open, asking for secure by Host.
    third = s_client(pki, port, None, name("secure"), version, sess_in=sess)
    assert SECRET not in third, third


@pytest.mark.parametrize("kind,version", RESUMPTION_PATHS, ids=RESUMPTION_IDS)
def test_a_verified_session_resumes_with_its_certificate(server, pki, certs, tmp_path, kind, version):
    port = server[kind]
    sess = tmp_path / "sess.pem"
    first = s_client(pki, port, name("secure"), name("secure"), version, sess_out=sess, cert=certs["good"],
                     path="/cgi-bin/env.cgi")
    assert "SSL_CLIENT_VERIFY=SUCCESS" in first, first
    # Resumed without presenting the certificate again: the session carries it.
    second = s_client(pki, port, name("secure"), name("secure"), version, sess_in=sess, path="/cgi-bin/env.cgi")
    assert reused(second), second
    assert status_of(second) == "200", second
    assert "SSL_CLIENT_VERIFY=SUCCESS" in second, second
    assert "SSL_CLIENT_S_DN=CN=iso-alice" in second, second
    # The session of secure is not one of open's either.
    third = s_client(pki, port, name("open"), name("open"), version, sess_in=sess)
    assert not reused(third) and status_of(third) == "200", third


@pytest.mark.parametrize("kind,version", RESUMPTION_PATHS, ids=RESUMPTION_IDS)
@pytest.mark.parametrize("which", ["untrusted", "revoked"])
def test_a_resumed_session_with_a_bad_certificate_is_still_refused(server, pki, certs, tmp_path, kind, version,
                                                                  which):
    port = server[kind]
    sess = tmp_path / "sess.pem"
    first = s_client(pki, port, name("secure"), name("secure"), version, sess_out=sess, cert=certs[which])
    assert status_of(first) == "403" and SECRET not in first, first
    second = s_client(pki, port, name("secure"), name("secure"), version, sess_in=sess)
    assert reused(second), second
    assert status_of(second) == "403" and SECRET not in second, second


# --- A pool of two servers sharing memcached --------------------------------

@pytest.fixture(scope="module")
def pool(pki, certs, srp_files):
    memcached = CacheServer("memcache")
    chain, key = pki.identity("iso-pool", "p256", cn=name("open"), dns_names=[f"*.{DOMAIN}"])
    ca_crl = pki.root / "iso-pool-ca-with-crl.pem"
    ca_crl.write_text(pki.ca_cert.read_text() + pki.crl("iso-pool-clients", [certs["revoked"][0]]).read_text())
    servers = []
    try:
        for _ in range(2):
            h = Httpd(extra_modules=MODULES + ["socache_memcache"])
            secure_dir, cgi = secure_site(h)
            dirs = {"open": h.docroot("open-site", body=OPEN + "\n"), "twin": h.docroot("twin-site", body=TWIN + "\n"),
                    "secure": secure_dir, "cgi": cgi}
            port = free_ports(1)[0]
            body = [f"ScriptSock {h.root}/run/cgid.sock", f"GnuTLSCache memcache:{memcached.address}",
                    f"CacheRoot {h.docroot('cache')}",
                    vhosts(port, chain, key, ca_crl, stranger_ca=certs["stranger-ca"][0],
                           tickets="off").format(**dirs)]
            h.write_config("\n".join(body), [port])
            h.start()
            servers.append((h, port))
        yield servers
    finally:
        for h, _ in servers:
            h.remove()
        memcached.stop()


def test_pool_shares_sessions_of_one_vhost_only(pool, pki, certs, tmp_path):
    (a, port_a), (b, port_b) = pool
    sess = tmp_path / "secure.pem"
    first = s_client(pki, port_a, name("secure"), name("secure"), "1.2", sess_out=sess, cert=certs["good"],
                     path="/cgi-bin/env.cgi")
    assert "SSL_CLIENT_VERIFY=SUCCESS" in first, first
    second = s_client(pki, port_b, name("secure"), name("secure"), "1.2", sess_in=sess, path="/cgi-bin/env.cgi")
    assert reused(second) and "SSL_CLIENT_VERIFY=SUCCESS" in second, second

    open_sess = tmp_path / "open.pem"
    first = s_client(pki, port_a, name("open"), name("open"), "1.2", sess_out=open_sess)
    assert status_of(first) == "200", first
    assert reused(s_client(pki, port_b, name("open"), name("open"), "1.2", sess_in=open_sess))
    for sni in (name("secure"), name("securetwin")):
        out = s_client(pki, port_b, sni, sni, "1.2", sess_in=open_sess)
        assert not reused(out) and SECRET not in out, out

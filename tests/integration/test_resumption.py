"""Session resumption: GnuTLSCache with shmcb, dbm, memcache, redis and none;
GnuTLSSessionTickets for TLS 1.2 and 1.3. Resumption really happens where
the configuration allows it and really does not where it must not; two
servers sharing memcached (or redis) resume each other's TLS 1.2 sessions."""
import subprocess

import pytest

from harness.cache_servers import CacheServer
from harness.clients import gnutls_cli
from harness.httpd import Httpd, vhost
from harness.ports import free_ports

MODULES = ["socache_shmcb", "socache_dbm", "socache_memcache", "socache_redis"]


def resumed(port, ca, version):
    rc, out = gnutls_cli(port, ca, version, extra=["--resume"])
    assert rc == 0, out
    assert "Resume Handshake was completed" in out or "trying to resume" in out, out
    return "This is a resumed session" in out


def serve(pki, global_lines, vhost_extra="", name="resume"):
    chain, key = pki.identity(name, "p256")
    h = Httpd(extra_modules=MODULES)
    port = free_ports(1)[0]
    h.docroot("htdocs", body="resumable\n")
    h.write_config(global_lines + "\n" + vhost(port, chain, key, extra=vhost_extra), [port])
    h.start()
    return h, port


@pytest.fixture(scope="module")
def cache_servers():
    servers = {"memcache": CacheServer("memcache"), "redis": CacheServer("redis")}
    yield servers
    for s in servers.values():
        s.stop()


def cache_line(kind, h, cache_servers):
    return {
        "none": "GnuTLSCache none",
        "shmcb": f"GnuTLSCache shmcb:{h.root}/run/gnutls_cache(512000)",
        "dbm": f"GnuTLSCache dbm:{h.root}/run/gnutls_cache",
        "memcache": f"GnuTLSCache memcache:{cache_servers['memcache'].address}" if cache_servers else "",
        "redis": f"GnuTLSCache redis:{cache_servers['redis'].address}" if cache_servers else "",
    }[kind]


@pytest.mark.parametrize("kind", ["shmcb", "dbm", "memcache", "redis"])
def test_cache_resumes_tls12_not_tls13(pki, cache_servers, kind):
    h = Httpd(extra_modules=MODULES)
    try:
        chain, key = pki.identity(f"cache-{kind}", "p256")
        port = free_ports(1)[0]
        h.docroot("htdocs", body="resumable\n")
        h.write_config(cache_line(kind, h, cache_servers) + "\nGnuTLSCacheTimeout 600\n" +
                       vhost(port, chain, key), [port])
        h.start()
        assert resumed(port, pki.ca_cert, "1.2"), f"{kind}: TLS 1.2 session not resumed"
        # TLS 1.3 resumes only with tickets (GnuTLS), which are off here.
        assert not resumed(port, pki.ca_cert, "1.3")
    finally:
        h.remove()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_no_cache_no_tickets_no_resumption(pki, version):
    h, port = serve(pki, "GnuTLSCache none", name="nores")
    try:
        assert not resumed(port, pki.ca_cert, version)
    finally:
        h.remove()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_tickets_resume_both_versions(pki, version):
    h, port = serve(pki, "GnuTLSSessionTickets on", name="tickets")
    try:
        assert resumed(port, pki.ca_cert, version)
    finally:
        h.remove()


def test_tickets_off_in_the_vhost_overrides_global_on(pki):
    h, port = serve(pki, "GnuTLSSessionTickets on", vhost_extra="  GnuTLSSessionTickets off", name="tickets-off")
    try:
        assert not resumed(port, pki.ca_cert, "1.3")
        assert not resumed(port, pki.ca_cert, "1.2")
    finally:
        h.remove()


def test_unknown_cache_provider_is_a_config_error(pki):
    h = Httpd()
    try:
        chain, key = pki.identity("badcache", "p256")
        port = free_ports(1)[0]
        h.write_config("GnuTLSCache nosuch:whatever\n" + vhost(port, chain, key), [port])
        rc, out = h.configtest()
        assert rc != 0
        assert "GnuTLSCache" in out and "nosuch" in out
    finally:
        h.remove()


@pytest.mark.parametrize("kind", ["memcache", "redis"])
def test_two_servers_share_sessions(pki, cache_servers, kind, tmp_path):
    """A TLS 1.2 session made on server A resumes on server B (another
    Apache, another port) through the shared cache."""
    chain, key = pki.identity(f"pool-{kind}", "p256", cn="pool.test")
    servers = []
    try:
        for _ in range(2):
            h = Httpd(extra_modules=MODULES)
            port = free_ports(1)[0]
            h.docroot("htdocs", body="pool\n")
            h.write_config(cache_line(kind, h, cache_servers) + "\n" +
                           vhost(port, chain, key, name="pool.test"), [port])
            h.start()
            servers.append((h, port))
        sess = tmp_path / "session.pem"

        def s_client(port, *args):
            r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "pool.test",
                                "-CAfile", str(pki.ca_cert), "-tls1_2", "-ign_eof", *args],
                               input="GET / HTTP/1.0\r\n\r\n", capture_output=True, text=True, timeout=30)
            return r.stdout + r.stderr

        first = s_client(servers[0][1], "-sess_out", str(sess))
        assert "New, TLSv1.2" in first, first
        second = s_client(servers[1][1], "-sess_in", str(sess))
        assert "Reused, TLSv1.2" in second, second
    finally:
        for h, _ in servers:
            h.remove()

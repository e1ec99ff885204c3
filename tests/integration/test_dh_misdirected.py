"""GnuTLSDHFile gives DHE its parameters; a Host naming a virtual host with
other TLS settings than the SNI one gets 421 Misdirected Request."""
import subprocess

from harness.clients import gnutls_cli
from harness.httpd import Httpd, vhost
from harness.pki import run
from harness.ports import free_ports

DHE_ONLY = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+DHE-RSA:-GROUP-ALL:+GROUP-SECP256R1"


def test_dh_file_is_used_for_dhe(pki):
    chain, key = pki.identity("dhe", "rsa2048")
    dh = pki.root / "dh.pem"
    run(["certtool", "--get-dh-params", "--sec-param", "high", "--outfile", dh])
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.docroot("htdocs", body="dhe\n")
        h.write_config(vhost(port, chain, key, extra=f"  GnuTLSDHFile {dh}\n"
                             "  GnuTLSPriorities NORMAL:+DHE-RSA:-VERS-TLS1.0:-VERS-TLS1.1"), [port])
        h.start()
        rc, out = gnutls_cli(port, pki.ca_cert, priority=DHE_ONLY)
        assert rc == 0, out + h.log()
        assert "(DHE-CUSTOM3072)" in out, out  # our parameters, not a negotiated RFC 7919 group
    finally:
        h.remove()


def test_bad_dh_file_is_a_config_error(pki):
    chain, key = pki.identity("dhe-bad", "rsa2048")
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.write_config(vhost(port, chain, key, extra=f"  GnuTLSDHFile {chain}"), [port])
        rc, out = h.configtest()
        assert rc != 0
        assert "GnuTLSDHFile" in out and "PKCS #3" in out, out
    finally:
        h.remove()


def test_host_of_another_vhost_gets_421(pki):
    a = pki.identity("mis-a", "p256", cn="a.mis")
    b = pki.identity("mis-b", "p256", cn="b.mis")
    h = Httpd()
    try:
        port = free_ports(1)[0]
        for n in ("a.mis", "b.mis"):
            h.docroot(f"site-{n}", body=f"site {n}\n")
        h.write_config(vhost(port, *a, name="a.mis", docroot=h.root / "site-a.mis") + "\n" +
                       vhost(port, *b, name="b.mis", docroot=h.root / "site-b.mis"), [port])
        h.start()

        def get(sni, host):
            r = subprocess.run(["curl", "-sS", "--cacert", str(pki.ca_cert), "--resolve", f"{sni}:{port}:127.0.0.1",
                                "-H", f"Host: {host}", "-w", "\n%{http_code}", f"https://{sni}:{port}/"],
                               capture_output=True, text=True, timeout=30)
            return r.stdout

        assert get("a.mis", "a.mis").endswith("site a.mis\n\n200")
        assert get("a.mis", "b.mis").endswith("\n421")
        assert get("b.mis", "b.mis").endswith("site b.mis\n\n200")
    finally:
        h.remove()

"""mod_status's server-status page has a mod_gnutls section: the GnuTLS
version, per virtual host the certificate, the key backend and its health,
and the session cache."""
import subprocess

from harness.httpd import Httpd, vhost
from harness.ports import free_ports
from harness.softhsm import SOFTHSM, SoftHsm

PIN = "97539753"


def test_status_page(pki):
    hsm = SoftHsm()
    hsm.token("status", PIN)
    url, pub = hsm.generate("status", PIN, "web")
    file_chain, file_key = pki.identity("status-file", "p256", cn="file.status")
    token_chain = pki.certify("status-token", pubkey=pub, cn="token.status")
    h = Httpd(extra_modules=["status", "socache_shmcb"], env=hsm.env)
    try:
        ports = free_ports(2)
        h.docroot("htdocs", body="status\n")
        h.write_config(f"""GnuTLSPKCS11Module {SOFTHSM}
GnuTLSCache shmcb:{h.root}/run/gcache(512000)
ExtendedStatus on
<Location /server-status>
  SetHandler server-status
</Location>
{vhost(ports[0], file_chain, file_key, name="file.status")}
{vhost(ports[1], token_chain, '"' + url + '"', name="token.status", extra=f"  GnuTLSPIN {PIN}")}
""", ports)
        h.start()

        def get(path):
            r = subprocess.run(["curl", "-sS", "--cacert", str(pki.ca_cert), "--resolve",
                                f"file.status:{ports[0]}:127.0.0.1", f"https://file.status:{ports[0]}{path}"],
                               capture_output=True, text=True, timeout=30)
            return r.stdout

        page = get("/server-status")
        assert "<h2>mod_gnutls</h2>" in page, page
        assert "GnuTLS 3." in page
        assert "CN=file.status" in page and "CN=token.status" in page
        assert "<td>file</td>" in page and "<td>pkcs11</td>" in page
        assert "pkcs11:token=status;object=web" in page
        assert PIN not in page
        assert "GnuTLSCache shmcb" in page
        auto = get("/server-status?auto")
        assert "GnuTLSVersion: 3." in auto, auto
        import re
        backends = dict(re.findall(r"^GnuTLSVhost(\d+)KeyBackend: (\S+)$", auto, re.M))
        names = dict(re.findall(r"^GnuTLSVhost(\d+): (\S+)$", auto, re.M))
        assert {names[i]: b for i, b in backends.items()} == {f"file.status:{ports[0]}": "file",
                                                             f"token.status:{ports[1]}": "pkcs11"}, auto
        assert auto.count("KeyHealth: ok") == 2, auto
    finally:
        h.remove()
        hsm.remove()


def test_upstream_status_lines_over_http1_and_http2(pki):
    """mod_gnutls's own lines, which monitoring scripts parse: the GnuTLS
    versions and the session serving the status request (over HTTP/2, its
    main connection), and Using TLS: no on a plain-HTTP virtual host."""
    import re
    chain, key = pki.identity("status-up", "p256")
    h = Httpd(extra_modules=["status", "http2", "socache_shmcb"])
    try:
        tls_port, plain_port = free_ports(2)
        h.write_config(f"""GnuTLSCache shmcb:{h.root}/run/gcache(512000)
<Location /server-status>
  SetHandler server-status
</Location>
{vhost(tls_port, chain, key, extra="  Protocols h2 http/1.1")}
<VirtualHost 127.0.0.1:{plain_port}>
  ServerName localhost
</VirtualHost>
""", [tls_port, plain_port])
        h.start()
        version = subprocess.run(["gnutls-cli", "--version"], capture_output=True, text=True).stdout
        for http in ("--http1.1", "--http2", "--tlsv1.2"):
            extra = ["--tls-max", "1.2", "--http1.1"] if http == "--tlsv1.2" else [http]
            cmd = ["curl", "-sS", "--cacert", str(pki.ca_cert), "--resolve", f"localhost:{tls_port}:127.0.0.1", *extra]
            auto = subprocess.run(cmd + [f"https://localhost:{tls_port}/server-status?auto"],
                                  capture_output=True, text=True, timeout=30).stdout
            assert re.search(r"^Using GnuTLS version: 3\.\d+\.\d+$", auto, re.M), auto
            assert re.search(r"^Built against GnuTLS version: 3\.\d+\.\d+$", auto, re.M), auto
            tls = "TLS1.2" if http == "--tlsv1.2" else "TLS1.3"
            assert re.search(rf"^Current TLS session: \({tls}\)-\(ECDHE-[A-Z0-9]+\)-\(ECDSA-[A-Z0-9-]+\)-"
                             r"\(AES-\d+-GCM\)$", auto, re.M), auto
            assert "GnuTLS Session Cache:" in auto
            page = subprocess.run(cmd + [f"https://localhost:{tls_port}/server-status"], capture_output=True,
                                  text=True, timeout=30).stdout
            assert "<h2>GnuTLS Information:</h2>\n<dl>\n<dt>Using GnuTLS version:</dt><dd>3." in page, page
            assert "<dt>Built against GnuTLS version:</dt><dd>3." in page
            assert "<dt>Using TLS:</dt><dd>yes</dd>" in page
            assert re.search(rf"<dt>Current TLS session:</dt><dd>\({tls}\)-", page), page
            assert "<h3>GnuTLS Session Cache:</h3>" in page
        plain = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{plain_port}/server-status"],
                               capture_output=True, text=True, timeout=30).stdout
        assert "<dt>Using TLS:</dt><dd>no</dd>" in plain and "Current TLS session" not in plain, plain
        plain_auto = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{plain_port}/server-status?auto"],
                                    capture_output=True, text=True, timeout=30).stdout
        assert "Using GnuTLS version:" in plain_auto and "Current TLS session" not in plain_auto
        assert version  # gnutls-cli ran: the library is the one installed
    finally:
        h.remove()

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

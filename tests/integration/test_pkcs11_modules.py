"""Two PKCS#11 modules at once (SoftHSM2 directly, and p11-kit's client
module talking to a p11-kit server), loaded only through the URLs' RFC 7512
module-path attribute (p11-kit's configuration knows SoftHSM2 but not the
client module), and the pin-source attribute."""
import os

import pytest

from harness.clients import gnutls_cli
from harness.httpd import Httpd
from harness.p11kit_server import CLIENT_MODULE, P11KitServer
from harness.ports import free_ports
from harness.softhsm import SOFTHSM, SoftHsm

PIN_LOCAL = "31313131"
PIN_REMOTE = "42424242"


@pytest.fixture(scope="module")
def setup(pki):
    local, remote = SoftHsm(), SoftHsm()
    local.token("local", PIN_LOCAL)
    remote.token("remote", PIN_REMOTE)
    local_url, local_pub = local.generate("local", PIN_LOCAL, "web")
    remote_url, remote_pub = remote.generate("remote", PIN_REMOTE, "web", kind="rsa")
    server = P11KitServer(remote.dir / "p11.sock", "remote", remote.env)
    server.start()
    pin_file = local.dir / "pin"
    pin_file.write_text(PIN_LOCAL)
    os.chmod(pin_file, 0o600)
    yield {"local": (local_url, pki.certify("mod-local", pubkey=local_pub, cn="local.mod")),
           "remote": (remote_url, pki.certify("mod-remote", pubkey=remote_pub, cn="remote.mod")),
           "env": dict(local.env, **server.client_env), "pin_file": pin_file}
    server.stop()
    local.remove()
    remote.remove()


def test_two_modules_and_url_attributes(pki, setup):
    local_url, local_chain = setup["local"]
    remote_url, remote_chain = setup["remote"]
    h = Httpd(env=setup["env"])
    try:
        ports = free_ports(3)
        h.docroot("htdocs", body="modules\n")
        h.write_config(f"""<VirtualHost 127.0.0.1:{ports[0]}>
  GnuTLSEnable on
  GnuTLSCertificateFile {local_chain}
  GnuTLSKeyFile "{local_url}?module-path={SOFTHSM}&pin-source=file:{setup['pin_file']}"
</VirtualHost>
<VirtualHost 127.0.0.1:{ports[1]}>
  GnuTLSEnable on
  GnuTLSCertificateFile {remote_chain}
  GnuTLSKeyFile "{remote_url}?module-path={CLIENT_MODULE}"
  GnuTLSPIN {PIN_REMOTE}
</VirtualHost>
<VirtualHost 127.0.0.1:{ports[2]}>
  GnuTLSEnable on
  GnuTLSCertificateFile {local_chain}
  GnuTLSKeyFile "{local_url};pin-value={PIN_LOCAL}"
</VirtualHost>""", ports)
        rc, out = h.configtest()
        assert rc == 0, out
        h.start()
        for port, cn in zip(ports, ("local.mod", "remote.mod", "local.mod")):
            for version in ("1.2", "1.3"):
                rc, out = gnutls_cli(port, pki.ca_cert, version)
                assert rc == 0 and f"CN={cn}" in out and "modules" in out, out + h.log()
        assert PIN_LOCAL not in h.all_logs() and PIN_REMOTE not in h.all_logs()
    finally:
        h.remove()

"""An RSA key on a token without CKM_RSA_PKCS_PSS (older HSMs and smart
cards): startup says so and keeps TLS 1.3 off for that host, so TLS 1.2
clients are served and TLS 1.3-only clients get a protocol-version refusal,
never a failed signature. The token is SoftHSM2 behind the forwarding
module of tests/pkcs11_delay with the mechanism hidden."""
import os
import re
from pathlib import Path

import pytest

from harness.clients import curl, gnutls_cli
from harness.httpd import Httpd, vhost
from harness.ports import free_ports
from harness.softhsm import SoftHsm

PIN = "24682468"
CKM_RSA_PKCS_PSS = "0xd"


@pytest.fixture(scope="module")
def server(pki):
    module = os.environ.get("MGS_P11_DELAY_MODULE")
    assert module and Path(module).is_file(), "MGS_P11_DELAY_MODULE must name the built module"
    hsm = SoftHsm()
    hsm.token("nopss", PIN)
    url, pub = hsm.generate("nopss", PIN, "web", kind="rsa", bits=2048)
    chain = pki.certify("pkcs11-no-pss", pubkey=pub)
    h = Httpd(env=dict(hsm.env, MGS_P11_DELAY_MS="0", MGS_P11_HIDE_MECHANISMS=CKM_RSA_PKCS_PSS))
    port = free_ports(1)[0]
    h.docroot("htdocs", body="rsa without pss\n")
    h.write_config(f"GnuTLSPKCS11Module {module}\n" + vhost(port, chain, f'"{url}"', extra=f"  GnuTLSPIN {PIN}"),
                   [port])
    h.start()
    yield h, port
    h.remove()
    hsm.remove()


def test_startup_says_tls13_is_off(server):
    h, _ = server
    assert re.search(r"cannot make RSA-PSS signatures \(no CKM_RSA_PKCS_PSS\); TLS 1.3 is off", h.full_log()), h.full_log()


def test_tls12_client_is_served_with_pkcs1(server, pki):
    h, port = server
    rc, out, err = curl(port, pki.ca_cert, "1.2")
    assert rc == 0 and out.endswith("rsa without pss\n\n200"), out + err + h.log()


def test_client_offering_both_gets_tls12_and_a_pkcs1_signature(server, pki):
    h, port = server
    rc, out = gnutls_cli(port, pki.ca_cert, priority="NORMAL")
    assert rc == 0 and "rsa without pss" in out, out + h.log()
    assert "(TLS1.2-" in out, out
    assert re.search(r"-\(RSA-SHA\d+\)-", out), out  # PKCS#1 v1.5, not RSA-PSS


def test_tls13_only_client_is_refused_cleanly(server, pki):
    h, port = server
    rc, out, err = curl(port, pki.ca_cert, "1.3")
    assert rc != 0, out
    log = h.log()
    assert "cannot sign" not in log and "TLSv1.3" not in err, log

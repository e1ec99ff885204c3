"""Every key encoding the file backend reads serves HTTPS: PEM and DER;
PKCS#1, SEC1, PKCS#8; encrypted PKCS#8 and legacy encrypted PEM with
GnuTLSPIN; and the GnuTLSX509* directive aliases."""
import pytest

from harness.clients import gnutls_cli
from harness.httpd import Httpd
from harness.ports import free_ports

PASS = "format-pass-42"


@pytest.fixture(scope="module")
def server(pki):
    rsa_chain, rsa = pki.identity("fmt-rsa", "rsa2048", cn="rsa.fmt")
    ec_chain, ec = pki.identity("fmt-ec", "p384", cn="ec.fmt")
    ed_chain, ed = pki.identity("fmt-ed", "ed25519", cn="ed.fmt")
    forms = {
        "rsa-pkcs1-pem": (rsa_chain, pki.reencode(rsa, "rsa1.pem", "rsa", "-traditional"), None),
        "rsa-pkcs1-der": (rsa_chain, pki.reencode(rsa, "rsa1.der", "rsa", "-traditional", "-outform", "DER"), None),
        "rsa-pkcs8-pem": (rsa_chain, pki.reencode(rsa, "rsa8.pem", "pkcs8", "-topk8", "-nocrypt"), None),
        "rsa-pkcs8-der": (rsa_chain, pki.reencode(rsa, "rsa8.der", "pkcs8", "-topk8", "-nocrypt", "-outform", "DER"), None),
        "rsa-pkcs8-encrypted": (rsa_chain, pki.reencode(rsa, "rsa8e.pem", "pkcs8", "-topk8", "-v2", "aes-256-cbc",
                                                        "-passout", f"pass:{PASS}"), PASS),
        "rsa-legacy-encrypted": (rsa_chain, pki.reencode(rsa, "rsale.pem", "rsa", "-aes256", "-traditional",
                                                         "-passout", f"pass:{PASS}"), PASS),
        "ec-sec1-pem": (ec_chain, pki.reencode(ec, "ec1.pem", "ec"), None),
        "ec-sec1-der": (ec_chain, pki.reencode(ec, "ec1.der", "ec", "-outform", "DER"), None),
        "ec-pkcs8-der": (ec_chain, pki.reencode(ec, "ec8.der", "pkcs8", "-topk8", "-nocrypt", "-outform", "DER"), None),
        "ec-legacy-encrypted": (ec_chain, pki.reencode(ec, "ecle.pem", "ec", "-aes256", "-passout", f"pass:{PASS}"), PASS),
        "ed25519-pkcs8-encrypted-der": (ed_chain, pki.reencode(ed, "ed8e.der", "pkcs8", "-topk8", "-v2", "aes-128-cbc",
                                                               "-outform", "DER", "-passout", f"pass:{PASS}"), PASS),
    }
    h = Httpd()
    ports = dict(zip(forms, free_ports(len(forms))))
    body = []
    for i, (name, (chain, key, pin)) in enumerate(forms.items()):
        h.docroot(f"site-{name}", body=f"served from {name}\n")
        # Alternate the current names with the GnuTLSX509* aliases.
        cert_d, key_d = ("GnuTLSX509CertificateFile", "GnuTLSX509KeyFile") if i % 2 else \
            ("GnuTLSCertificateFile", "GnuTLSKeyFile")
        body.append(f"<VirtualHost 127.0.0.1:{ports[name]}>\n  GnuTLSEnable on\n"
                    f"  {cert_d} {chain}\n  {key_d} {key}\n" + (f"  GnuTLSPIN {pin}\n" if pin else "") +
                    f"  DocumentRoot {h.root}/site-{name}\n</VirtualHost>")
    h.write_config("\n".join(body), ports.values())
    h.start()
    yield h, ports
    h.remove()


@pytest.mark.parametrize("form", ["rsa-pkcs1-pem", "rsa-pkcs1-der", "rsa-pkcs8-pem", "rsa-pkcs8-der",
                                  "rsa-pkcs8-encrypted", "rsa-legacy-encrypted", "ec-sec1-pem", "ec-sec1-der",
                                  "ec-pkcs8-der", "ec-legacy-encrypted", "ed25519-pkcs8-encrypted-der"])
@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_key_form_serves(server, pki, form, version):
    h, ports = server
    rc, out = gnutls_cli(ports[form], pki.ca_cert, version)
    assert rc == 0, out
    assert f"served from {form}" in out
    assert PASS not in h.all_logs()

"""ALPN through Apache's protocol hooks (Protocols h2 http/1.1 gives HTTP/2
to curl, nghttp and h2load, HTTP/1.1 to others), and name-based virtual
hosts chosen by SNI, with a file key, a token key and a TPM key on one
port."""
import subprocess

import pytest

from harness.clients import curl, gnutls_cli
from harness.httpd import Httpd
from harness.ports import free_ports
from harness.softhsm import SOFTHSM, SoftHsm
from harness.swtpm import Swtpm

PIN = "24682468"


@pytest.fixture(scope="module")
def server(pki):
    hsm = SoftHsm()
    hsm.token("sni", PIN)
    url, pub = hsm.generate("sni", PIN, "two")
    one = pki.identity("sni-one", "p256", cn="one.test")
    two = (pki.certify("sni-two", pubkey=pub, cn="two.test"), url)
    three = pki.identity("sni-three", "rsa2048", cn="three.test")
    tpm = Swtpm()
    tpm_key, tpm_pub = tpm.genkey("sni-four")
    four = (pki.certify("sni-four", pubkey=tpm_pub, cn="four.test"), tpm_key)
    h = Httpd(extra_modules=["http2"], env=hsm.env)
    port = free_ports(1)[0]
    body = [f"GnuTLSPKCS11Module {SOFTHSM}", f"GnuTLSTPMTCTI {tpm.tcti}"]
    for name, (chain, key), extra in (("one.test", one, "  Protocols h2 http/1.1"),
                                      ("two.test", two, f"  GnuTLSPIN {PIN}"),
                                      ("three.test", three, "  Protocols h2 http/1.1"),
                                      ("four.test", four, "  Protocols h2 http/1.1")):
        docroot = h.docroot(f"site-{name}", body=f"this is {name}\n")
        body.append(f'<VirtualHost 127.0.0.1:{port}>\n  ServerName {name}\n  GnuTLSEnable on\n'
                    f'  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile "{key}"\n{extra}\n'
                    f'  DocumentRoot {docroot}\n</VirtualHost>')
    h.write_config("\n".join(body), [port])
    h.start()
    yield h, port
    h.remove()
    hsm.remove()
    tpm.remove()


def fetch(port, pki, name, *extra):
    cmd = ["curl", "-sS", "--max-time", "20", "--cacert", str(pki.ca_cert), "--resolve",
           f"{name}:{port}:127.0.0.1", "-w", "\n%{http_version}", *extra, f"https://{name}:{port}/"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize("name", ["one.test", "two.test", "three.test", "four.test"])
@pytest.mark.parametrize("version", ["--tlsv1.2", "--tlsv1.3"])
def test_sni_picks_the_virtual_host(server, pki, name, version):
    h, port = server
    rc, out, err = fetch(port, pki, name, version)
    assert rc == 0, err + h.log()
    assert f"this is {name}" in out


def test_no_sni_gets_the_first_virtual_host(server, pki):
    h, port = server
    rc, out = gnutls_cli(port, pki.ca_cert, sni=None, extra=["--no-ca-verification"])
    assert rc == 0, out
    assert "CN=one.test" in out and "this is one.test" in out


def test_unknown_name_gets_the_first_virtual_host(server, pki):
    h, port = server
    rc, out = gnutls_cli(port, pki.ca_cert, sni="nobody.test", extra=["--no-ca-verification"])
    assert rc == 0, out
    assert "CN=one.test" in out


def test_h2_where_protocols_allow(server, pki):
    h, port = server
    rc, out, err = fetch(port, pki, "three.test", "--http2")
    assert rc == 0, err
    assert out.endswith("\n2") and "this is three.test" in out
    # two.test has the default Protocols (http/1.1): HTTP/1.1 even if h2 is offered.
    rc, out, err = fetch(port, pki, "two.test", "--http2")
    assert rc == 0, err
    assert out.endswith("\n1.1")
    rc, out, err = fetch(port, pki, "three.test", "--http1.1")
    assert out.endswith("\n1.1")


def test_nghttp_and_h2load(server, pki):
    h, port = server
    # Neither tool can pin a name to an address: they reach 127.0.0.1 without
    # SNI, which is one.test (first virtual host, Protocols h2 http/1.1).
    r = subprocess.run(["nghttp", "-v", f"https://127.0.0.1:{port}/"], capture_output=True, text=True,
                       timeout=30)
    assert "The negotiated protocol: h2" in r.stdout, r.stdout + r.stderr
    assert "this is one.test" in r.stdout
    r = subprocess.run(["h2load", "-n", "200", "-c", "4", "-m", "4", f"https://127.0.0.1:{port}/"],
                       capture_output=True, text=True, timeout=60)
    assert "Application protocol: h2" in r.stdout, r.stdout
    assert "200 succeeded, 0 failed" in r.stdout, r.stdout
    assert "Segmentation fault" not in h.log()

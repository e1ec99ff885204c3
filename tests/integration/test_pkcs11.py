"""Keys (and certificates) in SoftHSM2 tokens made by the test: served over
TLS 1.2 and 1.3 under event and prefork, two vhosts on two tokens, every PIN
source, and each startup error with its message."""
import os

import pytest

from harness.clients import gnutls_cli, curl
from harness.httpd import Httpd
from harness.ports import free_ports
from harness.softhsm import SOFTHSM, SoftHsm

PIN_A = "11223344"
PIN_B = "55667788"


@pytest.fixture(scope="module")
def hsm(pki):
    h = SoftHsm()
    h.token("tok-a", PIN_A)
    h.token("tok-b", PIN_B)
    url_a, pub_a = h.generate("tok-a", PIN_A, "web-ec")
    url_b, pub_b = h.generate("tok-b", PIN_B, "web-rsa", kind="rsa")
    chain_a = pki.certify("p11-a", pubkey=pub_a, cn="a.p11")
    chain_b = pki.certify("p11-b", pubkey=pub_b, cn="b.p11")
    # tok-b also carries its certificate, so the certificate can come from the token.
    cert_url_b = h.store_certificate("tok-b", PIN_B, "web-rsa", pki.root / "p11-b.crt")
    pin_file = h.dir / "pin-a"
    pin_file.write_text(PIN_A + "\n")
    os.chmod(pin_file, 0o600)
    yield {"hsm": h, "a": (url_a, chain_a), "b": (url_b, chain_b, cert_url_b), "pin_file": pin_file}
    h.remove()


def config(ports, vhosts, module_line=f"GnuTLSPKCS11Module {SOFTHSM}"):
    body = [module_line]
    for port, (name, cert, key, pin_line) in zip(ports, vhosts):
        body.append(f'<VirtualHost 127.0.0.1:{port}>\n  ServerName {name}\n  GnuTLSEnable on\n'
                    f'  GnuTLSCertificateFile "{cert}"\n  GnuTLSKeyFile "{key}"\n  {pin_line}\n'
                    f'  DocumentRoot {{root}}/site-{name}\n</VirtualHost>')
    return "\n".join(body)


@pytest.fixture(scope="module", params=["event", "prefork"])
def server(request, hsm):
    h = Httpd(mpm=request.param, env=dict(hsm["hsm"].env, MGS_PIN_B=PIN_B))
    url_a, chain_a = hsm["a"]
    url_b, chain_b, cert_url_b = hsm["b"]
    vhosts = [
        ("a.p11", chain_a, url_a, f"GnuTLSPINSource file:{hsm['pin_file']}"),
        ("b.p11", cert_url_b, url_b, "GnuTLSPINSource env:MGS_PIN_B"),
        ("c.p11", chain_a, url_a, f"GnuTLSPINSource \"exec:cat {hsm['pin_file']}\""),
        ("d.p11", chain_b, url_b + f";pin-value={PIN_B}", ""),
        ("e.p11", chain_a, url_a, f"GnuTLSPIN {PIN_A}"),
    ]
    ports = free_ports(len(vhosts))
    for name, *_ in vhosts:
        h.docroot(f"site-{name}", body=f"{name} from a token\n")
    h.write_config(config(ports, vhosts).replace("{root}", str(h.root)), ports)
    h.start()
    yield h, dict(zip([v[0] for v in vhosts], ports))
    h.remove()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("name", ["a.p11", "b.p11", "c.p11", "d.p11", "e.p11"])
def test_token_key_serves(server, pki, name, version):
    h, ports = server
    rc, out = gnutls_cli(ports[name], pki.ca_cert, version)
    assert rc == 0, out + h.log()
    assert f"{name} from a token" in out
    expected_cn = {"a": "a", "b": "b", "c": "a", "d": "b", "e": "a"}[name[0]]
    assert f"CN={expected_cn}.p11" in out
    for pin in (PIN_A, PIN_B):
        assert pin not in h.all_logs()


def test_many_handshakes_in_parallel(server, pki):
    import concurrent.futures
    h, ports = server
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: curl(ports["a.p11"], pki.ca_cert, "1.3"), range(24)))
    assert all(rc == 0 and out.endswith("\n200") for rc, out, _ in results), results
    assert "Segmentation fault" not in h.log()


def refused(hsm, vhost_lines, module_line=f"GnuTLSPKCS11Module {SOFTHSM}", env_extra=None):
    h = Httpd(env=dict(hsm["hsm"].env, **(env_extra or {})))
    try:
        port = free_ports(1)[0]
        h.docroot("site-x.p11", body="x")
        h.write_config(config([port], [vhost_lines], module_line).replace("{root}", str(h.root)), [port])
        rc, out = h.configtest()
        assert rc != 0, out
        return out
    finally:
        h.remove()


def test_wrong_pin(hsm):
    url, chain = hsm["a"]
    out = refused(hsm, ("x.p11", chain, url, "GnuTLSPIN 00000000"))
    assert "GnuTLSKeyFile" in out and "CKR_PIN_INCORRECT" in out and "x.p11" in out
    assert "00000000" not in out


def test_no_such_object(hsm):
    out = refused(hsm, ("x.p11", hsm["a"][1], "pkcs11:token=tok-a;object=missing", f"GnuTLSPIN {PIN_A}"))
    assert "no token or private key matches" in out and "object=missing" in out


def test_no_such_token(hsm):
    out = refused(hsm, ("x.p11", hsm["a"][1], "pkcs11:token=absent;object=web-ec", f"GnuTLSPIN {PIN_A}"))
    assert "GnuTLSKeyFile" in out and "token=absent" in out


def test_key_does_not_match_certificate(hsm):
    url_b = hsm["b"][0]
    out = refused(hsm, ("x.p11", hsm["a"][1], url_b, f"GnuTLSPIN {PIN_B}"))
    assert "does not match the certificate" in out


def test_unknown_module_file(hsm):
    url, chain = hsm["a"]
    out = refused(hsm, ("x.p11", chain, url, f"GnuTLSPIN {PIN_A}"),
                  module_line="GnuTLSPKCS11Module /nonexistent/libnothing.so")
    assert "GnuTLSPKCS11Module" in out and "/nonexistent/libnothing.so" in out


def test_exec_pin_source_failing(hsm):
    url, chain = hsm["a"]
    out = refused(hsm, ("x.p11", chain, url, "GnuTLSPINSource exec:/bin/false"))
    assert "GnuTLSPINSource" in out and "exec:/bin/false" in out and "exited with status 1" in out


def test_pin_value_is_redacted_in_errors(hsm):
    out = refused(hsm, ("x.p11", hsm["a"][1], "pkcs11:token=tok-a;object=missing;pin-value=98765432", ""))
    assert "98765432" not in out
    assert "pin-value=***" in out


@pytest.mark.parametrize("directive", ["GnuTLSKeyFile", "GnuTLSCertificateFile"])
def test_invalid_url_fails_configtest_without_echoing_it(hsm, directive):
    url, chain = hsm["a"]
    bad = "pkcs11:token=tok-a;object=web%zz;pin-value=24681357"
    lines = ("x.p11", bad, url, f"GnuTLSPIN {PIN_A}") if directive == "GnuTLSCertificateFile" \
        else ("x.p11", chain, bad, "")
    out = refused(hsm, lines)
    assert directive in out and "not a valid pkcs11: URL" in out and "encoding" in out, out
    assert "24681357" not in out


def test_certificate_url_pin_is_redacted_in_errors(hsm):
    url, _ = hsm["a"]
    out = refused(hsm, ("x.p11", "pkcs11:pin-value=13572468;token=tok-a;object=no-such-cert;type=cert", url,
                        f"GnuTLSPIN {PIN_A}"))
    assert "GnuTLSCertificateFile" in out and "object=no-such-cert" in out, out
    assert "13572468" not in out and "pin-value=***" in out

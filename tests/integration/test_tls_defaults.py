"""The default priority string, measured by testssl.sh (Debian's 3.0.8): no
finding at LOW or above on the TLS layer (protocols, ciphers, forward secrecy,
server preference, vulnerabilities), and the simulated clients that connect are
the documented set (docs/security.md). GnuTLSPriorities still overrides it.

The certificate findings testssl makes about the test PKI (self-signed CA,
short lifetime, no CAA record, one-byte serial) are about the test
certificates, not the TLS layer, and are left out."""
import json
import subprocess
import threading

import pytest

from harness.clients import gnutls_cli
from harness.httpd import Httpd, vhost
from harness.ports import free_ports

# The simulated clients that cannot connect with the default, per key type:
# the ones that speak only SSL 3 / TLS 1.0 (IE 6/8, Java 7), and, with an RSA
# certificate, IE 11 on Windows Phone 8.1, which has only CBC suites for
# ECDHE-RSA.
EXPECTED_FAILURES = {
    "rsa2048": {"ie_6_xp", "ie_8_win7", "ie_8_xp", "java_7u25", "ie_11_winphone81"},
    "p256": {"ie_6_xp", "ie_8_win7", "ie_8_xp", "java_7u25"},
}
# Findings about the test certificates, not about the TLS layer.
NOT_TLS_LAYER = ("cert_", "DNS_CAArecord")
SEVERE = {"LOW", "MEDIUM", "HIGH", "CRITICAL"}

@pytest.fixture(scope="module")
def server(pki):
    h = Httpd()
    ports = dict(zip(EXPECTED_FAILURES, free_ports(3)))
    legacy = free_ports(1)[0]
    body = []
    for kt, port in ports.items():
        chain, key = pki.identity(f"defaults-{kt}", kt)
        body.append(vhost(port, chain, key, docroot=h.docroot(f"defaults-{kt}", body="ok\n")))
    chain, key = pki.identity("defaults-legacy", "rsa2048")
    body.append(vhost(legacy, chain, key, extra="  GnuTLSPriorities NORMAL"))
    h.write_config("\n".join(body), [*ports.values(), legacy])
    h.start()
    yield h, ports, legacy
    h.remove()


def run_testssl(port, out):
    # -p protocols, -s cipher categories, -f forward secrecy, -P server
    # preference, -U vulnerabilities, -c client simulation, -S server defaults.
    cmd = ["testssl", "--quiet", "--color", "0", "--warnings", "off", "-p", "-s", "-f", "-P", "-U", "-c", "-S",
           "--jsonfile-pretty", str(out), "--ip", "127.0.0.1", f"https://localhost:{port}"]
    subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return json.loads(out.read_text())["scanResult"][0]


@pytest.fixture(scope="module")
def scans(server, tmp_path_factory):
    """Both key types scanned at once (each scan is mostly waiting on sockets)."""
    h, ports, _ = server
    tmp = tmp_path_factory.mktemp("testssl")
    results = {}

    def scan(kt):
        results[kt] = run_testssl(ports[kt], tmp / f"{kt}.json")

    threads = [threading.Thread(target=scan, args=(kt,)) for kt in ports]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def severe_findings(scan):
    found = []
    for section, items in scan.items():
        if not isinstance(items, list) or section == "browserSimulations":
            continue
        for f in items:
            if f.get("severity") in SEVERE and not f["id"].startswith(NOT_TLS_LAYER):
                found.append((section, f["id"], f["severity"], f["finding"]))
    return found


@pytest.mark.parametrize("key_type", list(EXPECTED_FAILURES))
def test_no_tls_layer_finding_at_low_or_above(scans, key_type):
    scan = scans[key_type]
    assert any(f["id"] == "cipher_order" for f in scan["serverPreferences"]), scan["serverPreferences"]
    assert severe_findings(scan) == []


@pytest.mark.parametrize("key_type", list(EXPECTED_FAILURES))
def test_server_chooses_the_cipher_order(scans, key_type):
    order = {f["id"]: f for f in scans[key_type]["serverPreferences"]}
    assert order["cipher_order"]["finding"] == "server", order


@pytest.mark.parametrize("key_type", list(EXPECTED_FAILURES))
def test_simulated_clients_that_connect(scans, key_type):
    sims = {f["id"].removeprefix("clientsimulation-"): f["finding"] for f in scans[key_type]["browserSimulations"]}
    assert len(sims) >= 30, sims
    failed = {name for name, finding in sims.items() if "No connection" in finding}
    assert failed == EXPECTED_FAILURES[key_type], sims
    assert all(finding.startswith("TLSv1.2") or finding.startswith("TLSv1.3")
               for name, finding in sims.items() if name not in failed), sims


CBC_ONLY = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:-MAC-ALL:+SHA1:+SHA256"


def test_default_refuses_cbc_and_sha1_and_old_versions(server, pki):
    h, ports, _ = server
    port = ports["rsa2048"]
    rc, out = gnutls_cli(port, pki.ca_cert, priority=CBC_ONLY)
    assert rc != 0 and "Handshake failed" in out, out
    rc, out = gnutls_cli(port, pki.ca_cert, priority="NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0")
    assert rc != 0, out
    # TLS 1.2 with only SHA-1 signatures offered by the client: no suite.
    rc, out = gnutls_cli(port, pki.ca_cert,
                         priority="NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-RSA-SHA1:%VERIFY_ALLOW_SIGN_WITH_SHA1")
    assert rc != 0, out


def test_server_order_wins_over_the_client_order(server, pki):
    h, ports, _ = server
    rc, out = gnutls_cli(ports["p256"], pki.ca_cert,
                         priority="NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM")
    assert rc == 0, out
    assert "AES-256-GCM" in out, out


def test_gnutls_priorities_overrides_the_default(server, pki):
    h, _, legacy = server
    rc, out = gnutls_cli(legacy, pki.ca_cert, priority=CBC_ONLY)
    assert rc == 0, out
    assert "AES-128-CBC" in out, out

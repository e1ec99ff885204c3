"""OCSP stapling from GnuTLSOCSPResponseFile: the response (made with
openssl ocsp from the test CA) is stapled for TLS 1.2 and 1.3 clients;
stapling off staples nothing; a file that is not an OCSP response fails
configtest. (Fetching from the responder: test_ocsp_fetch.py.)"""
import subprocess

import pytest

from harness.httpd import Httpd, vhost
from harness.pki import run
from harness.ports import free_ports


@pytest.fixture(scope="module")
def ocsp_response(pki):
    chain, key = pki.identity("ocsp", "p256")
    cert = pki.root / "ocsp.crt"
    serial = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-serial"], capture_output=True, text=True,
                            check=True).stdout.strip().split("=")[1]
    serial = serial if len(serial) % 2 == 0 else "0" + serial
    index = pki.root / "ocsp-index.txt"
    index.write_text(f"V\t301231235959Z\t\t{serial}\tunknown\t/CN=localhost\n")
    req = pki.root / "ocsp-req.der"
    resp = pki.root / "ocsp-resp.der"
    run(["openssl", "ocsp", "-issuer", pki.ca_cert, "-cert", cert, "-reqout", req, "-no_nonce"])
    run(["openssl", "ocsp", "-index", index, "-rsigner", pki.ca_cert, "-rkey", pki.ca_key, "-CA", pki.ca_cert,
         "-reqin", req, "-respout", resp, "-ndays", "7"])
    return chain, key, resp


def s_client_status(port, pki, version):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                        "-CAfile", str(pki.ca_cert), "-status", f"-tls{version}", "-ign_eof"],
                       input="GET / HTTP/1.0\r\n\r\n", capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


@pytest.mark.parametrize("version", ["1_2", "1_3"])
def test_response_file_is_stapled(pki, ocsp_response, version):
    chain, key, resp = ocsp_response
    h = Httpd()
    try:
        ports = free_ports(2)
        h.write_config(vhost(ports[0], chain, key, extra=f"  GnuTLSOCSPResponseFile {resp}") + "\n" +
                       vhost(ports[1], chain, key, extra=f"  GnuTLSOCSPResponseFile {resp}\n"
                                                         "  GnuTLSOCSPStapling off"), ports)
        h.start()
        out = s_client_status(ports[0], pki, version)
        assert "OCSP Response Status: successful" in out and "Cert Status: good" in out, out
        out = s_client_status(ports[1], pki, version)
        assert "OCSP response: no response sent" in out, out
    finally:
        h.remove()


def test_not_an_ocsp_response_fails_configtest(pki, ocsp_response):
    chain, key, _ = ocsp_response
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.write_config(vhost(port, chain, key, extra=f"  GnuTLSOCSPResponseFile {chain}"), [port])
        rc, out = h.configtest()
        assert rc != 0 and "GnuTLSOCSPResponseFile" in out and str(chain) in out, out
    finally:
        h.remove()


def test_stapling_on_without_responder_or_file_is_an_error(pki, ocsp_response):
    chain, key, _ = ocsp_response
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.write_config(vhost(port, chain, key, extra="  GnuTLSOCSPStapling on"), [port])
        rc, out = h.configtest()
        # The certificate names no OCSP responder and no file is given.
        assert rc != 0 and "GnuTLSOCSPStapling" in out and "no http:// OCSP responder" in out, out
    finally:
        h.remove()

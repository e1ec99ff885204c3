"""Every key type x TLS 1.2/1.3 x the three MPMs gets the right page, checked
with gnutls-cli, curl and openssl s_client."""
import pytest

from harness.clients import VERSIONS, curl, gnutls_cli, openssl_s_client
from harness.httpd import Httpd, vhost
from harness.pki import KEY_TYPES
from harness.ports import free_ports

MPMS = ["event", "worker", "prefork"]


@pytest.fixture(scope="module")
def identities(pki):
    return {kt: pki.identity(f"serve-{kt}", kt, cn=f"{kt}.test") for kt in KEY_TYPES}


@pytest.fixture(scope="module", params=MPMS)
def server(request, identities):
    """One httpd per MPM with one TLS virtual host (own port, own page) per key type."""
    h = Httpd(mpm=request.param)
    ports = dict(zip(KEY_TYPES, free_ports(len(KEY_TYPES))))
    body = []
    for kt, port in ports.items():
        docroot = h.docroot(f"site-{kt}", body=f"page of the {kt} site\n")
        chain, key = identities[kt]
        body.append(vhost(port, chain, key, docroot=docroot))
    h.write_config("\n".join(body), ports.values())
    h.start()
    yield h, ports
    h.remove()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("key_type", list(KEY_TYPES))
def test_gnutls_cli_gets_the_page(server, pki, key_type, version):
    h, ports = server
    rc, out = gnutls_cli(ports[key_type], pki.ca_cert, version)
    assert rc == 0, out
    assert f"- Description: ({VERSIONS[version]['label']}" in out, out
    assert f"page of the {key_type} site" in out
    assert f"CN={key_type}.test" in out


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("key_type", list(KEY_TYPES))
def test_curl_gets_the_page(server, pki, key_type, version):
    h, ports = server
    rc, out, err = curl(ports[key_type], pki.ca_cert, version, extra=["-v"])
    assert rc == 0, err
    assert out.endswith("\n200"), out
    assert f"page of the {key_type} site" in out
    assert f"TLSv{version}" in err


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("key_type", ["rsa2048", "p256", "ed25519"])
def test_openssl_s_client_gets_the_page(server, pki, key_type, version):
    h, ports = server
    rc, out = openssl_s_client(ports[key_type], pki.ca_cert, version)
    assert f"page of the {key_type} site" in out, out
    assert "Verify return code: 0 (ok)" in out
    assert f"Protocol  : TLSv{version}" in out or f"TLSv{version}" in out


def test_keepalive_and_server_still_healthy(server, pki):
    h, ports = server
    port = ports["p256"]
    rc, out, err = curl(port, pki.ca_cert, "1.3",
                        extra=["-v", "-o", "/dev/null", f"https://localhost:{port}/"])
    assert rc == 0, err
    assert "Re-using existing connection" in err or "left intact" in err
    assert "Segmentation fault" not in h.log()
    assert "exit signal" not in h.log()

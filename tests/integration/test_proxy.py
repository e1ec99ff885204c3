"""The TLS reverse proxy: GnuTLSProxyEngine with mod_proxy_http towards an
https:// back end (itself served by this module): the back end's
certificate is verified against GnuTLSProxyCAFile and the host name, a
client certificate from GnuTLSProxyCertificateFile/KeyFile is presented."""
import subprocess

import pytest

from harness.httpd import Httpd, vhost
from harness.ports import free_ports


def fetch(port, pki, path="/"):
    r = subprocess.run(["curl", "-sS", "-D", "-", "--cacert", str(pki.ca_cert), "--resolve",
                        f"localhost:{port}:127.0.0.1", "-w", "\n%{http_code}", f"https://localhost:{port}{path}"],
                       capture_output=True, text=True, timeout=30)
    return r.stdout


@pytest.fixture(scope="module")
def backend(pki):
    chain, key = pki.identity("backend", "p256", cn="localhost")
    h = Httpd(extra_modules=["headers"])
    port = free_ports(1)[0]
    h.docroot("htdocs", body="from the back end\n")
    h.write_config(vhost(port, chain, key, extra=f"  GnuTLSClientCAFile {pki.ca_cert}\n"
                                                  "  GnuTLSClientVerify request\n"
                                                  '  Header set X-Backend-Saw "%{SSL_CLIENT_S_DN}s"'), [port])
    h.start()
    yield h, port
    h.remove()


def frontend(pki, backend_port, extra):
    chain, key = pki.identity("frontend", "p256")
    h = Httpd(extra_modules=["proxy", "proxy_http"])
    port = free_ports(1)[0]
    h.write_config(vhost(port, chain, key, extra=f"""  GnuTLSProxyEngine on
{extra}
  ProxyPass /back/ https://localhost:{backend_port}/
"""), [port])
    h.start()
    return h, port


def test_proxy_to_verified_backend(pki, backend):
    client_cert, client_key = pki.client("proxy-client")
    h, port = frontend(pki, backend[1], f"  GnuTLSProxyCAFile {pki.ca_cert}\n"
                                        f"  GnuTLSProxyCertificateFile {client_cert}\n"
                                        f"  GnuTLSProxyKeyFile {client_key}")
    try:
        out = fetch(port, pki, "/back/")
        assert out.endswith("from the back end\n\n200"), out + h.log() + backend[0].log()
        assert "X-Backend-Saw: CN=proxy-client" in out, out  # our client certificate reached it
    finally:
        h.remove()


def test_proxy_refuses_an_untrusted_backend(pki, backend):
    other_ca, _ = pki.other_ca("proxy-other-ca")
    h, port = frontend(pki, backend[1], f"  GnuTLSProxyCAFile {other_ca}")
    try:
        out = fetch(port, pki, "/back/")
        assert out.endswith("\n502"), out
        assert "Error reading from remote server" in out, out
        assert "MGS01403: TLS handshake with the back end localhost" in h.log() and "issuer is unknown" in h.log(), h.log()
    finally:
        h.remove()


def test_plain_http_frontend_proxies_to_tls_backend(pki, backend):
    """GnuTLSProxyEngine without GnuTLSEnable: an http:// site whose back end
    speaks TLS."""
    h = Httpd(extra_modules=["proxy", "proxy_http"])
    try:
        port = free_ports(1)[0]
        h.write_config(f"""<VirtualHost 127.0.0.1:{port}>
  ServerName localhost
  GnuTLSProxyEngine on
  GnuTLSProxyCAFile {pki.ca_cert}
  ProxyPass /back/ https://localhost:{backend[1]}/
</VirtualHost>""", [port])
        h.start()
        r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", f"http://127.0.0.1:{port}/back/"],
                           capture_output=True, text=True, timeout=30)
        assert r.stdout.endswith("from the back end\n\n200"), r.stdout + h.log()
        assert "Segmentation fault" not in h.log() and "exit signal" not in h.log()
    finally:
        h.remove()

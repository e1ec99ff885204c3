"""Request bodies through the input filter: a CGI script reads what the client
sent and answers its length and SHA-256, over HTTP/1.1 (TLS 1.2 and 1.3, one
request and several on one keep-alive connection) and HTTP/2."""
import hashlib
import http.client
import os
import ssl

import pytest

from harness.clients import curl
from harness.httpd import Httpd
from harness.ports import free_ports

CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
head -c "$CONTENT_LENGTH" | sha256sum | cut -d' ' -f1
echo "$CONTENT_LENGTH"
"""


@pytest.fixture(scope="module")
def server(pki):
    chain, key = pki.identity("bodies", "p256")
    h = Httpd(extra_modules=["cgid", "alias", "http2"])
    port = free_ports(1)[0]
    cgi_dir = h.docroot("cgi-bin")
    (cgi_dir / "digest.cgi").write_text(CGI)
    os.chmod(cgi_dir / "digest.cgi", 0o755)
    h.docroot("htdocs", body="bodies\n")
    h.write_config(f"""
ScriptSock {h.root}/run/cgid.sock
<VirtualHost 127.0.0.1:{port}>
  ServerName localhost
  GnuTLSEnable on
  GnuTLSCertificateFile {chain}
  GnuTLSKeyFile {key}
  Protocols h2 http/1.1
  ScriptAlias /cgi-bin/ {cgi_dir}/
</VirtualHost>""", [port])
    h.start()
    yield h, port
    h.remove()


def body_file(tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / f"body-{size}"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("size", [1, 16383, 16385, 3 * 1024 * 1024 + 7])
def test_post_body_arrives_whole(server, pki, tmp_path, version, size):
    h, port = server
    path, digest = body_file(tmp_path, size)
    rc, out, err = curl(port, pki.ca_cert, version, path="/cgi-bin/digest.cgi",
                        extra=["--http1.1", "--data-binary", f"@{path}", "-H", "Content-Type: application/octet-stream"])
    assert rc == 0, err + h.log()
    assert out.split() == [digest, str(size), "200"], out + h.log()


def test_bodies_on_one_keepalive_connection(server, pki):
    h, port = server
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
    ctx.check_hostname = False
    try:
        first_socket = None
        for size in (100, 70000, 5, 40000):
            data = os.urandom(size)
            conn.request("POST", "/cgi-bin/digest.cgi", body=data, headers={"Host": "localhost"})
            resp = conn.getresponse()
            assert resp.status == 200, h.log()
            assert resp.read().decode().split() == [hashlib.sha256(data).hexdigest(), str(size)]
            first_socket = first_socket or conn.sock
            assert conn.sock is first_socket, "the server closed the keep-alive connection"
    finally:
        conn.close()


def test_post_body_over_http2(server, pki, tmp_path):
    h, port = server
    path, digest = body_file(tmp_path, 1024 * 1024 + 3)
    rc, out, err = curl(port, pki.ca_cert, "1.3", path="/cgi-bin/digest.cgi",
                        extra=["--http2", "--data-binary", f"@{path}", "-w", "\n%{http_version} %{http_code}"])
    assert rc == 0, err + h.log()
    assert out.split() == [digest, str(1024 * 1024 + 3), "2", "200"], out

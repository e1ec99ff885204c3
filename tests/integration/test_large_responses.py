"""Large static responses arrive whole and in order: a 20 MiB random file
(several 4 MiB file mappings, each cut into 16 KiB records and handed to the
network in batches), over HTTP/1.1 and HTTP/2, with EnableMMAP on and off,
under TLS 1.2 and 1.3, and twice on one keep-alive connection."""
import hashlib
import os
import subprocess

import pytest

from harness.httpd import Httpd, vhost
from harness.ports import free_ports

SIZE = 20 * 1024 * 1024 + 12345  # not a multiple of any buffer size


@pytest.fixture(scope="module", params=["mmap", "no-mmap"])
def server(request, pki):
    chain, key = pki.identity("large-responses", "p256")
    h = Httpd(extra_modules=["http2"])
    port = free_ports(1)[0]
    docroot = h.docroot("site", body="small\n")
    data = os.urandom(SIZE)
    (docroot / "big.bin").write_bytes(data)
    os.chmod(docroot / "big.bin", 0o644)
    mmap = "EnableMMAP on" if request.param == "mmap" else "EnableMMAP off"
    h.write_config(f"{mmap}\n" + vhost(port, chain, key, docroot=docroot, extra="  Protocols h2 http/1.1"), [port])
    h.start()
    yield h, port, hashlib.sha256(data).hexdigest()
    h.remove()


@pytest.mark.parametrize("proto", [["--http1.1", "--tlsv1.2", "--tls-max", "1.2"], ["--http1.1", "--tlsv1.3"],
                                   ["--http2", "--tlsv1.3"]], ids=["http1.1-tls1.2", "http1.1-tls1.3", "h2"])
def test_large_file_arrives_whole(server, pki, tmp_path, proto):
    h, port, digest = server
    out1, out2 = tmp_path / "1", tmp_path / "2"
    url = f"https://localhost:{port}/big.bin"
    r = subprocess.run(["curl", "-sS", "--max-time", "60", "--cacert", str(pki.ca_cert), *proto,
                        "--resolve", f"localhost:{port}:127.0.0.1", "-o", str(out1), url, "-o", str(out2), url,
                        "-w", "%{http_code} %{num_connects}\n"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2:] == ["200", "0"], r.stdout  # the second came on the same connection
    for f in (out1, out2):
        assert f.stat().st_size == SIZE
        assert hashlib.sha256(f.read_bytes()).hexdigest() == digest
    assert "MGS0150" not in h.log(), h.log()

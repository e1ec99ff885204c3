"""IP-based virtual hosts and _default_: the address a client connects to
chooses the virtual host (and so the certificate) when there is no SNI; a
name-based host on the same port still wins by SNI; an address no host names
gets the _default_ host."""
import re
import subprocess

import pytest

from harness.httpd import Httpd
from harness.ports import free_ports


def subject_cn(ip, port, pki, sni=None):
    cmd = ["gnutls-cli", "--port", str(port), "--x509cafile", str(pki.ca_cert), "--no-ca-verification",
           "--print-cert"]
    if sni:
        cmd += ["--sni-hostname", sni]
    else:
        cmd += ["--disable-sni"]
    cmd.append(ip)
    host = f"Host: {sni}\r\n" if sni else ""
    r = subprocess.run(cmd, input=f"GET / HTTP/1.0\r\n{host}\r\n", capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    m = re.search(r"subject `CN=([^,'`]+)", out)
    assert m, out
    return m.group(1), out


@pytest.fixture(scope="module")
def server(pki):
    a = pki.identity("ip-a", "p256", cn="a.test")
    b = pki.identity("ip-b", "p256", cn="b.test")
    named = pki.identity("ip-named", "p256", cn="named.test")
    default = pki.identity("ip-default", "rsa2048", cn="default.test")
    h = Httpd()
    port = free_ports(1)[0]
    hosts = []
    for addr, name, (chain, key) in (("127.0.0.1", "a.test", a), ("127.0.0.1", "named.test", named),
                                     ("127.0.0.2", "b.test", b), ("_default_", "default.test", default)):
        docroot = h.docroot(f"site-{name}", body=f"this is {name}\n")
        hosts.append(f"<VirtualHost {addr}:{port}>\n  ServerName {name}\n  GnuTLSEnable on\n"
                     f"  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile {key}\n  DocumentRoot {docroot}\n"
                     "</VirtualHost>")
    # Loopback only: 127.0.0.1 (from the harness), 127.0.0.2 and 127.0.0.3.
    h.write_config(f"Listen 127.0.0.2:{port}\nListen 127.0.0.3:{port}\n" + "\n".join(hosts), [port])
    h.start()
    yield h, port
    h.remove()


def test_address_chooses_the_host_without_sni(server, pki):
    h, port = server
    assert subject_cn("127.0.0.1", port, pki)[0] == "a.test"  # the first host of that address
    cn, out = subject_cn("127.0.0.2", port, pki)
    assert cn == "b.test" and "this is b.test" in out, out


def test_sni_still_chooses_among_hosts_of_one_address(server, pki):
    h, port = server
    cn, out = subject_cn("127.0.0.1", port, pki, sni="named.test")
    assert cn == "named.test" and "this is named.test" in out, out


def test_unnamed_address_gets_the_default_host(server, pki):
    h, port = server
    cn, out = subject_cn("127.0.0.3", port, pki)
    assert cn == "default.test" and "this is default.test" in out, out

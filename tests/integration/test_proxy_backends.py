"""The TLS reverse proxy towards real back ends: HTTP/2 back ends through
mod_proxy_http2 (ALPN from mod_proxy's proxy-request-alpn-protos note),
back-end sessions kept in GnuTLSCache and resumed (counted on the back
end), and each back-end failure reaching the client as mod_proxy's "502
Proxy Error" page with the TLS reason, naming the back end, in the front
end's error log; upstream mod_gnutls's debug lines."""
import re
import subprocess

import pytest

from harness.httpd import Httpd
from harness.ports import free_ports

BODY = "from the back end\n"


@pytest.fixture(scope="module")
def backend(pki):
    """One back-end httpd with a port per kind of back end."""
    chain, key = pki.identity("pb-backend", "p256", cn="localhost")
    h = Httpd(extra_modules=["http2", "headers"])
    names = ["h2", "h1only", "tls13only", "plain"]
    ports = dict(zip(names, free_ports(len(names))))
    h.docroot("htdocs", body=BODY)
    common = [f"GnuTLSCertificateFile {chain}", f"GnuTLSKeyFile {key}", "GnuTLSEnable on",
              "GnuTLSSessionTickets on", 'Header set X-Backend-Protocol "expr=%{SERVER_PROTOCOL}"']
    extra = {"h2": ["Protocols h2 http/1.1"], "h1only": ["Protocols http/1.1"],
             "tls13only": ["GnuTLSPriorities NORMAL:-VERS-ALL:+VERS-TLS1.3"], "plain": []}
    body = ["LogLevel info gnutls:debug"]
    for n, port in ports.items():
        body += [f"<VirtualHost 127.0.0.1:{port}>", "  ServerName localhost",
                 *[f"  {x}" for x in common + extra[n]], "</VirtualHost>"]
    h.write_config("\n".join(body), ports.values())
    h.start()
    yield h, ports
    h.remove()


def frontend(pki, lines, modules=("proxy", "proxy_http", "proxy_http2", "http2", "socache_shmcb"),
             global_lines=""):
    chain, key = pki.identity("pb-frontend", "p256")
    h = Httpd(extra_modules=list(modules))
    port = free_ports(1)[0]
    h.write_config(f"""LogLevel info gnutls:debug proxy:info
{global_lines}
<VirtualHost 127.0.0.1:{port}>
  ServerName localhost
  GnuTLSEnable on
  GnuTLSCertificateFile {chain}
  GnuTLSKeyFile {key}
  Protocols h2 http/1.1
  GnuTLSProxyEngine on
  GnuTLSProxyCAFile {pki.ca_cert}
{lines}
</VirtualHost>""", [port])
    h.start()
    return h, port


def get(pki, port, path, http2=False, headers=()):
    cmd = ["curl", "-sS", "-D", "-", "--cacert", str(pki.ca_cert), "--resolve", f"localhost:{port}:127.0.0.1",
           "-w", "\n%{http_code}", "--http2" if http2 else "--http1.1"]
    for hd in headers:
        cmd += ["-H", hd]
    r = subprocess.run(cmd + [f"https://localhost:{port}{path}"], capture_output=True, text=True, timeout=30)
    return r.stdout


# --- HTTP/2 back ends -------------------------------------------------------

@pytest.mark.parametrize("http2_front", [False, True], ids=["front-h1", "front-h2"])
def test_h2_backend_through_mod_proxy_http2(pki, backend, http2_front):
    bh, ports = backend
    h, port = frontend(pki, f"  ProxyPass /h2/ h2://localhost:{ports['h2']}/")
    try:
        out = get(pki, port, "/h2/", http2=http2_front)
        assert out.endswith(BODY + "\n200"), out + h.log()
        assert re.search(r"(?im)^x-backend-protocol: HTTP/2", out), out
    finally:
        h.remove()


def test_h2_backend_that_does_not_speak_h2(pki, backend):
    bh, ports = backend
    h, port = frontend(pki, f"  ProxyPass /h2/ h2://localhost:{ports['h1only']}/")
    try:
        out = get(pki, port, "/h2/")
        assert not out.endswith("\n200") and BODY not in out, out
        log = h.log()
        assert re.search(rf"MGS01402: back end localhost \(127\.0\.0\.1:{ports['h1only']}\) selected none of the protocols "
                         r"mod_proxy asked for \(h2\)", log), log
    finally:
        h.remove()


def test_http11_backend_is_offered_no_alpn(pki, backend):
    bh, ports = backend
    h, port = frontend(pki, f"  ProxyPass /b/ https://localhost:{ports['h2']}/")
    try:
        out = get(pki, port, "/b/")
        assert out.endswith(BODY + "\n200"), out
        assert re.search(r"(?im)^x-backend-protocol: HTTP/1\.1", out), out
    finally:
        h.remove()


# --- Failures reach the client as mod_proxy reports them ---------------------

def failure_cases(pki, ports):
    other_ca, _ = pki.other_ca("pb-other-ca")
    leaf = pki.root / "pb-backend.crt"
    crl = pki.crl("pb-backend-revoked", [leaf])
    plain = f"https://localhost:{ports['plain']}/"
    return {
        "untrusted": (f"  GnuTLSProxyCAFile {other_ca}\n  ProxyPass /x/ {plain}", "issuer is unknown"),
        "revoked": (f"  GnuTLSProxyCRLFile {crl}\n  ProxyPass /x/ {plain}", "revoked"),
        "wrong-name": (f"  ProxyPreserveHost On\n  ProxyPass /x/ {plain}",
                       "name in the certificate does not match"),
        "priorities": ("  GnuTLSProxyPriorities NORMAL:-VERS-ALL:+VERS-TLS1.2\n"
                       f"  ProxyPass /x/ https://localhost:{ports['tls13only']}/", "GnuTLSProxyPriorities"),
    }


@pytest.mark.parametrize("case", ["untrusted", "revoked", "wrong-name", "priorities"])
def test_backend_failure_is_a_502_proxy_error_with_the_reason_logged(pki, backend, case):
    bh, ports = backend
    lines, reason = failure_cases(pki, ports)[case]
    h, port = frontend(pki, lines)
    try:
        headers = ["Host: wrong.example"] if case == "wrong-name" else []
        out = get(pki, port, "/x/", headers=headers)
        assert out.endswith("\n502"), out
        assert "<title>502 Proxy Error</title>" in out and "Error reading from remote server" in out, out
        assert BODY not in out
        log = h.log()
        port_of = ports["tls13only"] if case == "priorities" else ports["plain"]
        m = re.search(rf"MGS01403: TLS handshake with the back end \S+ \(127\.0\.0\.1:{port_of}\) failed: (.*)", log)
        assert m, log
        assert reason in m.group(1).lower() or reason in m.group(1), m.group(1)
    finally:
        h.remove()


# --- Back-end sessions in GnuTLSCache ------------------------------------------

@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_backend_sessions_resume_through_gnutls_cache(pki, backend, version, cache):
    bh, ports = backend
    global_lines = "GnuTLSCache shmcb:{root}/run/gnutls_cache(512000)" if cache else "GnuTLSCache none"
    h = None
    try:
        chain, key = pki.identity("pb-frontend", "p256")
        h = Httpd(extra_modules=["proxy", "proxy_http", "socache_shmcb"])
        port = free_ports(1)[0]
        h.write_config(f"""LogLevel info gnutls:debug
{global_lines.format(root=h.root)}
<VirtualHost 127.0.0.1:{port}>
  ServerName localhost
  GnuTLSEnable on
  GnuTLSCertificateFile {chain}
  GnuTLSKeyFile {key}
  GnuTLSProxyEngine on
  GnuTLSProxyCAFile {pki.ca_cert}
  GnuTLSProxyPriorities NORMAL:-VERS-ALL:+VERS-TLS{version}
  ProxyPass /r/ https://localhost:{ports['plain']}/ disablereuse=on
</VirtualHost>""", [port])
        h.start()
        before = bh.log().count("TLS session resumed.")
        for _ in range(6):
            out = get(pki, port, "/r/")
            assert out.endswith(BODY + "\n200"), out + h.log()
        resumed_on_backend = bh.log().count("TLS session resumed.") - before
        front = h.log()
        resumed = front.count("was resumed")
        full = front.count("full TLS handshake with the back end")
        assert resumed + full == 6, front
        assert "TLS proxy connection opened." in front and "TLS connection opened." in front
        if cache:
            assert resumed >= 4 and resumed_on_backend >= 4, (resumed, resumed_on_backend, front)
        else:
            assert resumed == 0 and full == 6, front
    finally:
        if h:
            h.remove()

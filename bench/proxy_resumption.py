#!/usr/bin/python3
"""Back-end TLS handshakes per second through the reverse proxy, with and
without session resumption, beside mod_ssl's proxy in the same run.

One back end (this module, TLS 1.3 with tickets, ECDSA P-256) serves a
1 KiB page. Each front end proxies to it with `disablereuse=on`, so every
request opens a new back-end TLS connection; wrk drives the front end over
16 keep-alive connections, so the rate measured is that of back-end
handshakes. Rows: this module's front end with GnuTLSCache (back-end
sessions resumed), without it (full handshakes), and mod_ssl's front end
(SSLProxyEngine; mod_ssl 2.4 does not reuse back-end sessions across
connections).
Ratios are against mod_ssl.

    MGS_MODULE=build/mod_gnutls.so /usr/bin/python3 bench/proxy_resumption.py [--seconds 5]
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.httpd import Httpd  # noqa: E402
from harness.pki import Pki  # noqa: E402
from harness.ports import free_ports  # noqa: E402
from run import wrk  # noqa: E402


def backend(pki):
    chain, key = pki.identity("pr-backend", "p256")
    h = Httpd(extra_modules=["socache_shmcb"])
    port = free_ports(1)[0]
    h.docroot("htdocs", body="x" * 1023 + "\n")
    h.write_config(f"""LogLevel warn
<VirtualHost 127.0.0.1:{port}>
  ServerName localhost
  GnuTLSEnable on
  GnuTLSCertificateFile {chain}
  GnuTLSKeyFile {key}
  GnuTLSSessionTickets on
</VirtualHost>""", [port])
    h.start()
    return h, port


def frontend(pki, kind, backend_port):
    chain, key = pki.identity("pr-frontend", "p256")
    modules = ["proxy", "proxy_http", "socache_shmcb"] + (["ssl"] if kind == "ssl" else [])
    h = Httpd(extra_modules=modules)
    port = free_ports(1)[0]
    target = f"ProxyPass /p/ https://localhost:{backend_port}/ disablereuse=on"
    if kind == "ssl":
        site = f"""SSLSessionCache shmcb:{h.root}/run/scache(1024000)
<VirtualHost 127.0.0.1:{port}>
  ServerName localhost
  SSLEngine on
  SSLCertificateFile {chain}
  SSLCertificateKeyFile {key}
  SSLProxyEngine on
  SSLProxyCACertificateFile {pki.ca_cert}
  {target}
</VirtualHost>"""
    else:
        cache = f"GnuTLSCache shmcb:{h.root}/run/gcache(1024000)" if kind == "gnutls-cache" else "GnuTLSCache none"
        site = f"""{cache}
<VirtualHost 127.0.0.1:{port}>
  ServerName localhost
  GnuTLSEnable on
  GnuTLSCertificateFile {chain}
  GnuTLSKeyFile {key}
  GnuTLSProxyEngine on
  GnuTLSProxyCAFile {pki.ca_cert}
  {target}
</VirtualHost>"""
    h.write_config("LogLevel warn\n" + site, [port])
    if kind == "ssl":
        h.conf.write_text(h.conf.read_text().replace("LoadModule gnutls_module", "#LoadModule gnutls_module"))
    h.start()
    return h, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    pki = Pki(Path(os.environ.get("TMPDIR", "/tmp")) / f"mgs-bench-proxy-pki-{os.getpid()}")
    back, back_port = backend(pki)
    rates = {}
    try:
        for kind in ("gnutls-cache", "gnutls-nocache", "ssl"):
            front, port = frontend(pki, kind, back_port)
            try:
                rates[kind], _ = wrk(port, args.seconds, "/p/")
            finally:
                front.remove()
    finally:
        back.remove()
    base = rates["ssl"] or float("nan")
    labels = {"gnutls-cache": "mod_gnutls, GnuTLSCache (back-end sessions resumed)",
              "gnutls-nocache": "mod_gnutls, GnuTLSCache none (full handshakes)",
              "ssl": "mod_ssl, SSLProxyEngine"}
    width = max(map(len, labels.values())) + 2
    print(f"{'back-end TLS handshakes/s (one per request)':<{width}}  {'rate':>9}  {'vs mod_ssl':>10}")
    for kind, label in labels.items():
        print(f"{label:<{width}}  {rates[kind]:9.1f}  {rates[kind] / base:10.2f}")
    print(f"{'resumption gain (cache / none)':<{width}}  {rates['gnutls-cache'] / (rates['gnutls-nocache'] or 1):9.2f}")


if __name__ == "__main__":
    main()

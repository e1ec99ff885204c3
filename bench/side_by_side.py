"""One TLS server for a side-by-side benchmark: this module, mod_ssl, or
upstream mod_gnutls (this module's configuration, another module file), on
loopback, one virtual host, the same certificate and documents."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from harness.httpd import Httpd  # noqa: E402
from harness.ports import free_ports  # noqa: E402


def tls_vhost(kind, port, chain, key, docroot, gnutls_extra="", vhost_extra=""):
    if kind == "ssl":
        tls = f"SSLEngine on\n  SSLCertificateFile {chain}\n  SSLCertificateKeyFile {key}"
    else:
        tls = f"GnuTLSEnable on\n  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile {key}" + gnutls_extra
    return (f"<VirtualHost 127.0.0.1:{port}>\n  ServerName localhost\n  {tls}\n{vhost_extra}"
            f"  DocumentRoot {docroot}\n</VirtualHost>")


class TlsServer:
    """kind "gnutls" (module: another mod_gnutls.so to load, e.g. upstream's)
    or "ssl"; fill(docroot) adds documents before the start."""

    def __init__(self, label, kind, chain, key, module=None, extra_modules=(), preamble="", gnutls_extra="",
                 vhost_extra="", fill=None, env=None):
        self.label, self.kind = label, kind
        self.h = Httpd(extra_modules=list(extra_modules) + (["ssl"] if kind == "ssl" else []), env=env)
        docroot = self.h.docroot("htdocs", body="x" * 1023 + "\n")
        if fill:
            fill(docroot)
        self.port = free_ports(1)[0]
        self.h.write_config(preamble + tls_vhost(kind, self.port, chain, key, docroot, gnutls_extra, vhost_extra),
                            [self.port])
        text = self.h.conf.read_text().replace("LogLevel info", "LogLevel warn")
        if kind == "ssl":
            text = text.replace("LoadModule gnutls_module", "#LoadModule gnutls_module")
        elif module:
            text = "\n".join(f"LoadModule gnutls_module {module}" if line.startswith("LoadModule gnutls_module")
                             else line for line in text.splitlines()) + "\n"
        self.h.conf.write_text(text)
        self.h.start()

    def stop(self):
        self.h.remove()

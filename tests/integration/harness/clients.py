"""The real clients: gnutls-cli, curl and openssl s_client."""
import subprocess

REQUEST = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"

VERSIONS = {
    "1.2": {"gnutls": "NORMAL:-VERS-ALL:+VERS-TLS1.2", "curl": ["--tlsv1.2", "--tls-max", "1.2"],
            "openssl": "-tls1_2", "label": "TLS1.2"},
    "1.3": {"gnutls": "NORMAL:-VERS-ALL:+VERS-TLS1.3", "curl": ["--tlsv1.3", "--tls-max", "1.3"],
            "openssl": "-tls1_3", "label": "TLS1.3"},
}


def gnutls_cli(port, ca, version="1.3", priority=None, sni="localhost", request=REQUEST, extra=()):
    cmd = ["gnutls-cli", "--port", str(port), "--x509cafile", str(ca),
           "--priority", priority or VERSIONS[version]["gnutls"], *extra]
    if sni:
        cmd += ["--sni-hostname", sni, "--verify-hostname", "localhost"]
    cmd.append("127.0.0.1")
    r = subprocess.run(cmd, input=request, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def curl(port, ca, version="1.3", path="/", extra=()):
    cmd = ["curl", "-sS", "--max-time", "20", "--cacert", str(ca), *VERSIONS[version]["curl"],
           "--resolve", f"localhost:{port}:127.0.0.1", "-w", "\n%{http_code}", *extra,
           f"https://localhost:{port}{path}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def openssl_s_client(port, ca, version="1.3", request=REQUEST):
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
           "-CAfile", str(ca), "-verify_return_error", VERSIONS[version]["openssl"], "-ign_eof"]
    r = subprocess.run(cmd, input=request, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def peer_certificate(port, ca):
    """The subject line gnutls-cli prints for the server certificate."""
    rc, out = gnutls_cli(port, ca, extra=["--print-cert"])
    for line in out.splitlines():
        if "subject `" in line:
            return line
    return out

#!/usr/bin/python3
"""Benchmarks mod_gnutls against mod_ssl on the same Apache, in one run.

Both servers: event MPM, identical settings, the same certificates and the
same static files (1 KiB, 16 MiB), driven one at a time by real load tools
(openssl s_time, wrk, h2load, curl). Every load loop is bounded in time or
count and every server is stopped by pid. Prints one table with a ratio
column (mod_gnutls / mod_ssl; higher is better except for memory).

    sudo bash bench/run.sh            # builds first
    MGS_MODULE=build/mod_gnutls.so /usr/bin/python3 bench/run.py [--seconds 5]
"""
import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.httpd import MODULES, Httpd  # noqa: E402
from harness.pki import Pki  # noqa: E402
from harness.ports import free_ports  # noqa: E402
from harness.softhsm import SOFTHSM, SoftHsm  # noqa: E402
from harness.swtpm import Swtpm  # noqa: E402
from server_usage import IdleConnections, cpu_seconds, memory_kib  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIGN_RATE = ROOT / "build" / "mgs_sign_rate"
DELAY_MODULE = ROOT / "build" / "tests" / "pkcs11-delay.so"
PKCS11_ENGINE = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"  # libengine-pkcs11-openssl


def tls_site(kind, port, chain, key, docroot):
    if kind == "gnutls":
        return f"""<VirtualHost 127.0.0.1:{port}>
  ServerName localhost
  GnuTLSEnable on
  GnuTLSCertificateFile {chain}
  GnuTLSKeyFile {key}
  GnuTLSSessionTickets on
  Protocols h2 http/1.1
  DocumentRoot {docroot}
</VirtualHost>"""
    return f"""<VirtualHost 127.0.0.1:{port}>
  ServerName localhost
  SSLEngine on
  SSLCertificateFile {chain}
  SSLCertificateKeyFile {key}
  SSLSessionTickets on
  Protocols h2 http/1.1
  DocumentRoot {docroot}
</VirtualHost>"""


class Server:
    def __init__(self, kind, identities, env=None, preamble=""):
        self.kind = kind
        extra = ["http2", "socache_shmcb"] + (["ssl"] if kind == "ssl" else [])
        self.h = Httpd(extra_modules=extra, env=env)
        docroot = self.h.docroot("htdocs", body="x" * 1023 + "\n")
        with open(docroot / "big.bin", "wb") as f:
            f.write(os.urandom(16 * 1024 * 1024))
        os.chmod(docroot / "big.bin", 0o644)
        self.ports = dict(zip(identities, free_ports(len(identities))))
        body = "\n".join(tls_site(kind, self.ports[name], *identities[name], docroot) for name in identities)
        cache = (f"GnuTLSCache shmcb:{self.h.root}/run/gcache(1024000)" if kind == "gnutls"
                 else f"SSLSessionCache shmcb:{self.h.root}/run/scache(1024000)")
        # Idle keep-alive connections wait in the event MPM's listener, not in
        # a worker: let each child hold many of them, for long enough.
        idle = "KeepAliveTimeout 120\nMaxKeepAliveRequests 0\nAsyncRequestWorkerFactor 200"
        conf_body = preamble + "\n" + cache + "\n" + idle + "\n" + body
        self.h.write_config(conf_body, self.ports.values())
        if kind == "ssl":
            # Same module set for both; mod_gnutls is loaded but not enabled here.
            text = self.h.conf.read_text().replace("LoadModule gnutls_module", "#LoadModule gnutls_module")
            text = text.replace("LogLevel info", "LogLevel warn")
            self.h.conf.write_text(text)
        else:
            self.h.conf.write_text(self.h.conf.read_text().replace("LogLevel info", "LogLevel warn"))
        self.h.start()

    def stop(self):
        self.h.remove()


def s_time_counted(port, version, mode, seconds):
    """(connections per second, connections made) by one openssl s_time."""
    r = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", f"-{mode}", f"-tls{version}",
                        "-time", str(seconds), "-www", "/"], capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"(\d+) connections in ([\d.]+)s; ([\d.]+) connections/user sec", r.stdout)
    n = re.findall(r"(\d+) connections in (\d+) real seconds", r.stdout)
    if n:
        conns, secs = map(int, n[-1])
        return conns / max(secs, 1), conns
    return (float(m.group(1)) / float(m.group(2)), int(m.group(1))) if m else (0.0, 0)


def s_time(port, version, mode, seconds):
    return s_time_counted(port, version, mode, seconds)[0]


def handshakes_and_cpu(server, port, version, seconds):
    """Full-handshake rate and the server's CPU time per handshake (µs, all
    Apache processes, from /proc), in one bounded s_time run."""
    before = cpu_seconds(server.h.pid())
    rate, conns = s_time_counted(port, version, "new", seconds)
    used = cpu_seconds(server.h.pid()) - before
    return rate, (used / conns * 1e6 if conns else float("nan"))


def idle_memory_per_connection(server, port, count):
    """KiB of server memory (PSS, all Apache processes) per idle TLS
    connection: `count` connections that each made one request and wait."""
    warm = IdleConnections(port, 50)  # the first connections grow pools and arenas
    warm.close()
    time.sleep(1)
    pss0, _ = memory_kib(server.h.pid())
    idle = IdleConnections(port, count)
    try:
        time.sleep(1)
        pss1, _ = memory_kib(server.h.pid())
        assert idle.all_open(), "the server dropped idle connections"
    finally:
        idle.close()
    return (pss1 - pss0) / count


def s_time_parallel(port, version, clients, seconds):
    """Full handshakes from `clients` concurrent s_time processes, summed."""
    procs = [subprocess.Popen(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", f"-tls{version}",
                               "-time", str(seconds), "-www", "/"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in range(clients)]
    total = 0.0
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 120)
        n = re.findall(r"(\d+) connections in (\d+) real seconds", out)
        if n:
            conns, secs = map(int, n[-1])
            total += conns / max(secs, 1)
    return total


def sign_rate(key, *args, env=None):
    """The backend's raw signing rate through our keystore (no TLS)."""
    r = subprocess.run([str(SIGN_RATE), str(key), *map(str, args)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, **(env or {})))
    m = re.search(r"signatures/s=([\d.]+)", r.stdout)
    return float(m.group(1)) if m else 0.0


def openssl_rsa_sign_rate(seconds):
    """OpenSSL's RSA-2048 signatures/s in one thread (what mod_ssl signs with)."""
    r = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "rsa2048"], capture_output=True, text=True,
                       timeout=seconds * 4 + 60)
    m = re.search(r"^rsa\s+2048 bits\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)", r.stdout, re.M)
    return float(m.group(1)) if m else 0.0


def failed_handshakes(server):
    return len(re.findall(r"handshake failed|cannot sign", server.h.log()))


def wrk(port, seconds, path="/"):
    """(requests/s, requests made) on 16 keep-alive connections."""
    r = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", f"https://127.0.0.1:{port}{path}"],
                       capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    n = re.search(r"(\d+) requests in", r.stdout)
    return (float(m.group(1)) if m else 0.0), (int(n.group(1)) if n else 0)


def with_server_cpu(server, run, *args):
    """run(*args) -> (rate, units); returns (rate, server CPU µs per unit)."""
    before = cpu_seconds(server.h.pid())
    rate, units = run(*args)
    used = cpu_seconds(server.h.pid()) - before
    return rate, (used / units * 1e6 if units else float("nan"))


def h2load(port, requests):
    r = subprocess.run(["h2load", "-n", str(requests), "-c", "16", "-m", "10", f"https://127.0.0.1:{port}/"],
                       capture_output=True, text=True, timeout=300)
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", r.stdout)
    return float(m.group(1)) if m else 0.0


def bulk(port, count):
    """(MB/s, MB moved) in `count` downloads of the 16 MiB file."""
    start = time.monotonic()
    for _ in range(count):
        subprocess.run(["curl", "-sk", "-o", "/dev/null", f"https://127.0.0.1:{port}/big.bin"], check=True,
                       timeout=120)
    return count * 16 / (time.monotonic() - start), count * 16


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5, help="duration of each timed load loop")
    ap.add_argument("--idle", type=int, default=1000, help="idle TLS connections for the memory measure")
    args = ap.parse_args()
    pki = Pki(Path(os.environ.get("TMPDIR", "/tmp")) / f"mgs-bench-pki-{os.getpid()}")
    identities = {"p256": pki.identity("bench-p256", "p256"), "rsa2048": pki.identity("bench-rsa", "rsa2048")}
    results, cpu_results, memory = {}, {}, {}
    for kind in ("gnutls", "ssl"):
        srv = Server(kind, identities)
        try:
            r = results[kind] = {}
            cpu = cpu_results[kind] = {}
            # First, on the fresh server: memory per idle connection.
            memory[kind] = idle_memory_per_connection(srv, srv.ports["p256"], args.idle)
            for key in identities:
                for v in ("1_3", "1_2"):
                    name = f"{key}, TLS{v.replace('_', '.')}"
                    r[f"full handshakes/s, {name}"], cpu[name] = handshakes_and_cpu(srv, srv.ports[key], v,
                                                                                     args.seconds)
            r["full handshakes/s, p256, TLS1.3, 16 clients"] = s_time_parallel(srv.ports["p256"], "1_3", 16,
                                                                                 args.seconds)
            r["resumed handshakes/s, p256, TLS1.2"] = s_time(srv.ports["p256"], "1_2", "reuse", args.seconds)
            r["keep-alive requests/s, 1 KiB"], cpu["keep-alive, per 1 KiB request"] = \
                with_server_cpu(srv, wrk, srv.ports["p256"], args.seconds)
            r["HTTP/2 requests/s (h2load)"] = h2load(srv.ports["p256"], 20000)
            r["bulk MB/s, 16 MiB"], cpu["bulk, per MiB"] = with_server_cpu(srv, bulk, srv.ports["p256"], 10)
        finally:
            srv.stop()
    # Hardware keys cost little: the same ECDSA P-256 handshake with the key
    # in a SoftHSM2 token, against our own file-key rate and against mod_ssl
    # using the same token key through the OpenSSL pkcs11 engine.
    hsm = SoftHsm()
    try:
        hsm.token("bench", "12341234")
        url, pub = hsm.generate("bench", "12341234", "web")
        token_chain = pki.certify("bench-token", pubkey=pub)
        srv = Server("gnutls", {"p256": (token_chain, f'"{url}"')}, env=hsm.env,
                     preamble=f"GnuTLSPKCS11Module {SOFTHSM}\nGnuTLSPIN 12341234")
        try:
            token = {v: handshakes_and_cpu(srv, srv.ports["p256"], v, args.seconds) for v in ("1_3", "1_2")}
        finally:
            srv.stop()
        engine_conf = hsm.dir / "openssl-pkcs11.cnf"
        engine_conf.write_text(f"""openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = {PKCS11_ENGINE}
MODULE_PATH = {SOFTHSM}
PIN = 12341234
init = 0
""")
        os.chmod(engine_conf, 0o644)
        srv = Server("ssl", {"p256": (token_chain, f'"{url};type=private"')},
                     env=dict(hsm.env, OPENSSL_CONF=str(engine_conf)), preamble="SSLCryptoDevice pkcs11")
        try:
            ssl_token = {v: handshakes_and_cpu(srv, srv.ports["p256"], v, args.seconds) for v in ("1_3", "1_2")}
        finally:
            srv.stop()
        # SoftHSM2's own ceiling: C_Sign in a loop on one logged-in session.
        softhsm_ceiling = sign_rate(url, "--module", SOFTHSM, "--pin", "12341234", "--seconds", args.seconds,
                                    env=hsm.env)
    finally:
        hsm.remove()

    # TPM 2.0 (swtpm), ECDSA P-256, through the key agent: one client and 16.
    tpm = Swtpm()
    try:
        tpm_key, tpm_pub = tpm.genkey("bench")
        tpm_ceiling = sign_rate(tpm_key, "--tcti", tpm.tcti, "--seconds", args.seconds)
        srv = Server("gnutls", {"p256": (pki.certify("bench-tpm", pubkey=tpm_pub), tpm_key)},
                     preamble=f"GnuTLSTPMTCTI {tpm.tcti}\nLogLevel gnutls:info")
        try:
            tpm_rates = {c: s_time_parallel(srv.ports["p256"], "1_3", c, args.seconds) for c in (1, 16)}
            tpm_failed = failed_handshakes(srv)
        finally:
            srv.stop()
    finally:
        tpm.remove()

    # A network HSM (5 ms per signature) in front of SoftHSM2, one Apache
    # child with 64 threads, 64 concurrent clients; one session would cap it
    # at 200 signatures/s.
    hsm = SoftHsm()
    try:
        hsm.token("slow", "12341234")
        url, pub = hsm.generate("slow", "12341234", "web")
        env = dict(hsm.env, MGS_P11_DELAY_MS="5")
        os.environ.update(env)
        delay_ceiling = sign_rate(url, "--module", DELAY_MODULE, "--pin", "12341234", "--threads", 64,
                                  "--seconds", args.seconds)
        one_session = sign_rate(url, "--module", DELAY_MODULE, "--pin", "12341234", "--threads", 1,
                                "--seconds", args.seconds)
        srv = Server("gnutls", {"p256": (pki.certify("bench-slow", pubkey=pub), f'"{url}"')}, env=env,
                     preamble=f"GnuTLSPKCS11Module {DELAY_MODULE}\nGnuTLSPIN 12341234")
        text = srv.h.conf.read_text()
        for line in ("StartServers 2", "ServerLimit 4", "MaxRequestWorkers 16"):
            text = text.replace(line, "")
        srv.h.conf.write_text(text + "\nStartServers 1\nServerLimit 1\nThreadsPerChild 64\n"
                                     "MaxRequestWorkers 64\nMinSpareThreads 1\nMaxSpareThreads 64\n")
        srv.h.stop()
        srv.h.start()
        try:
            slow = {c: s_time_parallel(srv.ports["p256"], "1_3", c, args.seconds) for c in (1, 16, 64)}
        finally:
            srv.stop()
    finally:
        hsm.remove()
    file_ceiling = sign_rate(identities["p256"][1], "--seconds", args.seconds)
    rsa_gnutls = sign_rate(identities["rsa2048"][1], "--seconds", args.seconds)
    rsa_openssl = openssl_rsa_sign_rate(args.seconds)

    width = 54
    print(f"{'measure':<{width}}  {'mod_gnutls':>11}  {'mod_ssl':>11}  {'ratio':>6}")
    for k in results["gnutls"]:
        g, s = results["gnutls"][k], results["ssl"][k]
        ratio = g / s if s else float("nan")
        print(f"{k:<{width}}  {g:11.1f}  {s:11.1f}  {ratio:6.2f}")
    print(f"{'idle memory KiB/connection (PSS, ' + str(args.idle) + ' idle)':<{width}}  {memory['gnutls']:11.1f}  "
          f"{memory['ssl']:11.1f}  {memory['gnutls'] / memory['ssl'] if memory['ssl'] else float('nan'):6.2f}")
    print()
    print(f"{'server CPU µs per operation (lower is better)':<{width}}  {'mod_gnutls':>11}  {'mod_ssl':>11}  "
          f"{'ratio':>6}")
    for k in cpu_results["gnutls"]:
        g, c = cpu_results["gnutls"][k], cpu_results["ssl"][k]
        label = k if k.startswith(("keep-alive", "bulk")) else "full handshake, file key, " + k
        print(f"{'  ' + label:<{width}}  {g:11.1f}  {c:11.1f}  {g / c if c else float('nan'):6.2f}")
    for v in ("1_3", "1_2"):
        g, c = token[v][1], ssl_token[v][1]
        print(f"{'  full handshake, SoftHSM2 key, p256, TLS' + v.replace('_', '.'):<{width}}  {g:11.1f}  {c:11.1f}  "
              f"{g / c if c else float('nan'):6.2f}")
    extra = cpu_results["gnutls"]["rsa2048, TLS1.3"] - cpu_results["ssl"]["rsa2048, TLS1.3"]
    signing = (1e6 / rsa_gnutls - 1e6 / rsa_openssl) if rsa_gnutls and rsa_openssl else float("nan")
    print(f"{'  RSA-2048 TLS1.3: extra µs/handshake over mod_ssl':<{width}}  {extra:11.1f}")
    print(f"{'  of which RSA signing, GnuTLS vs OpenSSL (µs/sig)':<{width}}  {signing:11.1f}  "
          f"{'':>11}  {signing / extra if extra > 0 else float('nan'):6.2f}")
    print()
    print(f"{'SoftHSM2 key vs our file key':<{width}}  {'token':>11}  {'file':>11}  {'ratio':>6}")
    for v in ("1_3", "1_2"):
        k = f"full handshakes/s, p256, TLS{v.replace('_', '.')}"
        f = results["gnutls"][k]
        print(f"{k:<{width}}  {token[v][0]:11.1f}  {f:11.1f}  {token[v][0] / f if f else float('nan'):6.2f}")
    print()
    print(f"{'SoftHSM2 key: mod_gnutls vs mod_ssl (pkcs11 engine)':<{width}}  {'mod_gnutls':>11}  {'mod_ssl':>11}  "
          f"{'ratio':>6}")
    for v in ("1_3", "1_2"):
        k = f"full handshakes/s, p256, TLS{v.replace('_', '.')}"
        print(f"{k:<{width}}  {token[v][0]:11.1f}  {ssl_token[v][0]:11.1f}  "
              f"{token[v][0] / ssl_token[v][0] if ssl_token[v][0] else float('nan'):6.2f}")
    file_rates = {1: results["gnutls"]["full handshakes/s, p256, TLS1.3"],
                  16: results["gnutls"]["full handshakes/s, p256, TLS1.3, 16 clients"]}
    print()
    print(f"{'TPM 2.0 (swtpm) ECDSA key vs our file key':<{width}}  {'tpm':>11}  {'file':>11}  {'ratio':>6}")
    for c in (1, 16):
        f = file_rates[c]
        print(f"{f'full handshakes/s, TLS1.3, {c} client(s)':<{width}}  {tpm_rates[c]:11.1f}  "
              f"{f:11.1f}  {tpm_rates[c] / f if f else float('nan'):6.2f}")
    print(f"{'  vs swtpm raw signing ceiling (16 clients)':<{width}}  {tpm_rates[16]:11.1f}  {tpm_ceiling:11.1f}  "
          f"{tpm_rates[16] / tpm_ceiling if tpm_ceiling else float('nan'):6.2f}")
    print(f"{'  failed handshakes or sign errors logged':<{width}}  {tpm_failed:11d}")
    print()
    print(f"{'5 ms network HSM, one child':<{width}}  {'rate':>11}  {'1 session':>11}  {'ratio':>6}")
    for c in (1, 16, 64):
        print(f"{f'full handshakes/s, TLS1.3, {c} client(s)':<{width}}  {slow[c]:11.1f}  {200.0:11.1f}  "
              f"{slow[c] / 200.0:6.2f}")
    print(f"{'  raw signing, 64 threads (pool) / 1 thread':<{width}}  {delay_ceiling:11.1f}  {one_session:11.1f}  "
          f"{delay_ceiling / one_session if one_session else float('nan'):6.2f}")
    print()
    print(f"{'raw signing ceilings (our keystore, 1 thread)':<{width}}  {'sig/s':>11}")
    print(f"{'  file ECDSA P-256 (GnuTLS)':<{width}}  {file_ceiling:11.1f}")
    print(f"{'  SoftHSM2 ECDSA P-256 (C_Sign, one session)':<{width}}  {softhsm_ceiling:11.1f}")
    print(f"{'  swtpm ECDSA P-256 (TPM2_Sign)':<{width}}  {tpm_ceiling:11.1f}")
    print(f"{'  file RSA-2048 (GnuTLS)':<{width}}  {rsa_gnutls:11.1f}")
    print(f"{'  file RSA-2048 (OpenSSL, openssl speed)':<{width}}  {rsa_openssl:11.1f}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A soak of mixed traffic with `apachectl graceful` every minute (default
10 minutes), on loopback, event MPM:

- full handshakes (curl, a new connection per request) on a file key, a
  SoftHSM2 key and a swtpm key (through the key agent);
- resumed handshakes (Python ssl, each connection resuming the last session);
- keep-alive (Python ssl, 20 requests per connection);
- HTTP/2 (curl --http2, 5 requests per connection);
- client certificates (curl --cert on a GnuTLSClientVerify require host).

A request fails if it gets no 200. One exception is HTTP's own: a kept-alive
connection that the server closes before any byte of the next response
(what graceful does to idle connections) is retried once on a new one, as
every HTTP client does, and counted as "reconnected". Every 10 s the memory
(RSS) and descriptors of the parent and of each child are sampled; the
report compares the children of the first and last generations at the same
age, and the parent across the soak.

    MGS_MODULE=build/mod_gnutls.so /usr/bin/python3 bench/soak.py [--minutes 10]
"""
import argparse
import collections
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.httpd import Httpd  # noqa: E402
from harness.pki import Pki  # noqa: E402
from harness.ports import free_ports  # noqa: E402
from harness.softhsm import SOFTHSM, SoftHsm  # noqa: E402
from harness.swtpm import Swtpm  # noqa: E402
from server_usage import processes  # noqa: E402

PIN = "24682468"


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = collections.Counter()
        self.failed = collections.Counter()
        self.reconnected = collections.Counter()
        self.reasons = collections.defaultdict(collections.Counter)
        self.resumed = 0

    def add(self, kind, ok, reason=""):
        with self.lock:
            (self.ok if ok else self.failed)[kind] += 1
            if not ok:
                self.reasons[kind][reason[:120]] += 1


def curl_run(tally, kind, port, ca, urls, extra=()):
    cmd = ["curl", "-sS", "--max-time", "20", "--cacert", str(ca), "--resolve", f"localhost:{port}:127.0.0.1",
           "-w", "%{http_code}\n", *extra]
    for url in urls:  # one connection, reused for each URL
        cmd += ["-o", "/dev/null", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    codes = r.stdout.split()
    for i in range(len(urls)):
        code = codes[i] if i < len(codes) else "none"
        tally.add(kind, code == "200", f"rc={r.returncode} code={code} {r.stderr.strip()}")


def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return None if not data else data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


class Soak:
    def __init__(self, args):
        self.args = args
        self.pki = Pki(Path(os.environ.get("TMPDIR", "/tmp")) / f"mgs-soak-pki-{os.getpid()}")
        self.tally = Tally()
        self.stop = threading.Event()
        self.samples = []  # (time, generation, {pid: (rss_kib, fds)}, parent (rss, fds))
        self.generation = 0

    def setup(self):
        pki = self.pki
        self.file_chain, self.file_key = pki.identity("soak-file", "p256")
        self.hsm = SoftHsm()
        self.hsm.token("soak", PIN)
        url, pub = self.hsm.generate("soak", PIN, "web")
        self.hsm_chain, self.hsm_key = pki.certify("soak-hsm", pubkey=pub), url
        self.tpm = Swtpm()
        self.tpm_key, tpm_pub = self.tpm.genkey("soak")
        self.tpm_chain = pki.certify("soak-tpm", pubkey=tpm_pub)
        self.client_cert, self.client_key = pki.client("soak-user")
        self.h = Httpd(extra_modules=["http2", "socache_shmcb"], env=self.hsm.env)
        self.h.docroot("htdocs", body="x" * 1023 + "\n")
        names = ["file", "hsm", "tpm", "require"]
        self.ports = dict(zip(names, free_ports(len(names))))
        doc = self.h.root / "htdocs"

        def site(name, chain, key, extra=""):
            return (f'<VirtualHost 127.0.0.1:{self.ports[name]}>\n  ServerName localhost\n  GnuTLSEnable on\n'
                    f'  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile "{key}"\n  GnuTLSSessionTickets on\n'
                    f'  Protocols h2 http/1.1\n  DocumentRoot {doc}\n{extra}</VirtualHost>')
        body = "\n".join([
            f"GnuTLSPKCS11Module {SOFTHSM}", f"GnuTLSTPMTCTI {self.tpm.tcti}",
            f"GnuTLSCache shmcb:{self.h.root}/run/gcache(1024000)",
            "KeepAliveTimeout 30", "MaxKeepAliveRequests 0", "LogLevel warn",
            site("file", self.file_chain, self.file_key),
            site("hsm", self.hsm_chain, self.hsm_key, f"  GnuTLSPIN {PIN}\n"),
            site("tpm", self.tpm_chain, self.tpm_key),
            site("require", self.file_chain, self.file_key,
                 f"  GnuTLSClientVerify require\n  GnuTLSClientCAFile {pki.ca_cert}\n"),
        ])
        self.h.write_config(body, self.ports.values())
        self.h.conf.write_text(self.h.conf.read_text().replace("LogLevel info\n", ""))
        self.h.start()

    # -- clients ---------------------------------------------------------
    def loop(self, fn):
        def run():
            while not self.stop.is_set():
                try:
                    fn()
                except Exception as e:  # a client-side error is a failure too
                    self.tally.add(fn.__name__, False, f"{type(e).__name__}: {e}")
                    time.sleep(0.1)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def full(self):
        for name in ("file", "hsm", "tpm"):
            port = self.ports[name]
            curl_run(self.tally, f"full-{name}", port, self.pki.ca_cert, [f"https://localhost:{port}/"])

    def http2(self):
        port = self.ports["file"]
        curl_run(self.tally, "http2", port, self.pki.ca_cert, [f"https://localhost:{port}/"] * 5, ["--http2"])

    def client_auth(self):
        port = self.ports["require"]
        curl_run(self.tally, "client-cert", port, self.pki.ca_cert, [f"https://localhost:{port}/"],
                 ["--cert", str(self.client_cert), "--key", str(self.client_key)])

    def context(self):
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.check_hostname = False
        return ctx

    def resumed(self, state={}):
        ctx = state.setdefault("ctx", self.context())
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # resumption Python can see (session_reused)
        with socket.create_connection(("127.0.0.1", self.ports["file"]), timeout=20) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", session=state.get("session")) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                head = read_response(s)
                self.tally.add("resumed", bool(head and head.startswith(b"HTTP/1.1 200")), repr(head)[:80])
                if s.session_reused:
                    with self.tally.lock:
                        self.tally.resumed += 1
                state["session"] = s.session

    def keepalive(self, state={}):
        ctx = state.setdefault("ctx", self.context())

        def connect():
            raw = socket.create_connection(("127.0.0.1", self.ports["file"]), timeout=20)
            return ctx.wrap_socket(raw, server_hostname="localhost")
        s = connect()
        try:
            for i in range(20):
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                try:
                    head = read_response(s)
                except (ConnectionError, ssl.SSLError):
                    head = None
                if head is None and i > 0:
                    # Closed before any byte of this response: retry once.
                    with self.tally.lock:
                        self.tally.reconnected["keepalive"] += 1
                    s.close()
                    s = connect()
                    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    head = read_response(s)
                self.tally.add("keepalive", bool(head and head.startswith(b"HTTP/1.1 200")), repr(head)[:80])
                time.sleep(0.05)
        finally:
            s.close()

    # -- the server ------------------------------------------------------
    def sample(self):
        parent = self.h.pid()
        per_child = {}
        for pid in processes(parent):
            try:
                rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if line.startswith("VmRSS:"))
                fds = len(os.listdir(f"/proc/{pid}/fd"))
                start = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
            except (OSError, StopIteration):
                continue
            per_child[pid] = (rss, fds, start)
        self.samples.append((time.monotonic(), self.generation, parent, per_child))

    def run(self):
        self.setup()
        try:
            clients = [self.loop(f) for f in (self.full, self.http2, self.client_auth, self.resumed,
                                              self.keepalive, self.keepalive)]
            start = time.monotonic()
            end = start + self.args.minutes * 60
            next_graceful = start + 60
            while time.monotonic() < end:
                self.sample()
                time.sleep(10)
                if time.monotonic() >= next_graceful and time.monotonic() < end - 5:
                    os.kill(self.h.pid(), signal.SIGUSR1)
                    self.generation += 1
                    next_graceful += 60
            self.sample()
            self.stop.set()
            for t in clients:
                t.join(timeout=60)
            self.log = self.h.full_log()
        finally:
            self.h.remove()
            self.hsm.remove()
            self.tpm.remove()
        self.report()

    def report(self):
        t = self.tally
        print(f"\nsoak: {self.args.minutes} min, graceful every 60 s ({self.generation} restarts)")
        print("| traffic | requests ok | failed | reconnected (keep-alive closed by graceful) |")
        print("|---|---|---|---|")
        for kind in sorted(set(t.ok) | set(t.failed)):
            print(f"| {kind} | {t.ok[kind]} | {t.failed[kind]} | {t.reconnected.get(kind, 0)} |")
        print(f"resumed handshakes: {t.resumed} of {t.ok['resumed'] + t.failed['resumed']}")
        for kind, reasons in t.reasons.items():
            for why, n in reasons.most_common(5):
                print(f"  failure {kind} x{n}: {why}")
        # Parent and children over time.
        parent_rows = []
        for when, gen, parent, procs in self.samples:
            if parent in procs:
                parent_rows.append((gen, procs[parent][0], procs[parent][1]))
        if parent_rows:
            print(f"parent: RSS {parent_rows[0][1]} -> {parent_rows[-1][1]} KiB, "
                  f"fds {parent_rows[0][2]} -> {parent_rows[-1][2]} over {len(parent_rows)} samples")
        # Each child's RSS and fds at its last sample, by the generation it was sampled in.
        by_gen = collections.defaultdict(dict)
        for when, gen, parent, procs in self.samples:
            for pid, (rss, fds, _) in procs.items():
                if pid != parent:
                    by_gen[gen][pid] = (rss, fds)
        print("| generation | children | max RSS KiB | max fds |\n|---|---|---|---|")
        for gen in sorted(by_gen):
            vals = by_gen[gen].values()
            print(f"| {gen} | {len(by_gen[gen])} | {max(v[0] for v in vals)} | {max(v[1] for v in vals)} |")
        # What the server logged at error level or worse, by identifier.
        import re
        errors = collections.Counter()
        for line in self.log.splitlines():
            if re.search(r"\[[a-z_0-9]+:(error|crit|alert|emerg)\]", line):
                m = re.search(r"(MGS\d{5}|AH\d{5})", line)
                errors[m.group(1) if m else line[-100:]] += 1
        print("errors logged: " + (", ".join(f"{k} x{n}" for k, n in errors.most_common()) or "none"))
        crashes = [line for line in self.log.splitlines() if "exit signal" in line or "AddressSanitizer" in line]
        print(f"crashes in the error log: {len(crashes)}")
        for line in crashes[:5]:
            print("  " + line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    Soak(ap.parse_args()).run()


if __name__ == "__main__":
    main()

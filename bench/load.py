#!/usr/bin/python3
"""Load figures for mod_gnutls beside mod_ssl, in one run, on loopback:

- idle: N (default 10,000) keep-alive TLS connections that each made one
  request and wait, on the event MPM: server memory (PSS of every Apache
  process) per connection and in total, and whether every one still answers;
- flood: full handshakes from 8 concurrent `openssl s_time -new` clients;
- slow: S clients that send half a ClientHello and stall, reconnecting as
  soon as the server drops them (mod_reqtimeout `handshake=5`);

and during each flood a probe client (one new TLS connection and GET per
0.1 s) reports how many of its requests succeeded and their latency, with
the server's memory before, during and after. Every load is bounded in time
and every server is stopped by pid.

    MGS_MODULE=build/mod_gnutls.so /usr/bin/python3 bench/load.py [--idle 10000] [--seconds 30]
"""
import argparse
import os
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.pki import Pki  # noqa: E402
from run import Server  # noqa: E402
from server_usage import IdleConnections, memory_kib, processes  # noqa: E402

HALF_CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"

# Enough event-MPM capacity for the idle crowd: 4 children x (25 threads +
# 200 x 25 waiting connections); Timeout and mod_reqtimeout as a production
# server would have them.
PREAMBLE = """LoadModule reqtimeout_module /usr/lib/apache2/modules/mod_reqtimeout.so
ThreadsPerChild 25
ServerLimit 4
StartServers 4
MinSpareThreads 100
MaxSpareThreads 100
MaxRequestWorkers 100
RequestReadTimeout handshake=5 header=20-40,MinRate=500 body=20,MinRate=500"""


class Probe(threading.Thread):
    """A normal client during a flood: a new TLS connection and one GET
    every `interval` seconds; records the latency of each success."""

    def __init__(self, port, interval=0.1):
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.ok, self.failed = [], 0
        self.stop_at = None
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def one(self):
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with self.ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:80]
        return time.monotonic() - start

    def run(self):
        while time.monotonic() < self.stop_at:
            try:
                self.ok.append(self.one())
            except Exception:
                self.failed += 1
            time.sleep(self.interval)

    def summary(self):
        lat = sorted(self.ok)
        if not lat:
            return {"ok": 0, "failed": self.failed, "p50_ms": float("nan"), "p99_ms": float("nan")}
        return {"ok": len(lat), "failed": self.failed, "p50_ms": statistics.median(lat) * 1000,
                "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000}


def handshake_flood(port, seconds, clients=8):
    procs = [subprocess.Popen(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-tls1_3",
                               "-time", str(seconds), "-www", "/"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in range(clients)]
    return procs


class SlowFlood(threading.Thread):
    """`count` connections that each send half a ClientHello and wait; one
    the server drops is replaced at once."""

    def __init__(self, port, count):
        super().__init__(daemon=True)
        self.port, self.count = port, count
        self.stop_at = None
        self.dropped = 0

    def open_one(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(HALF_CLIENT_HELLO)
        s.setblocking(False)
        return s

    def run(self):
        socks = []
        while time.monotonic() < self.stop_at:
            while len(socks) < self.count:
                try:
                    socks.append(self.open_one())
                except OSError:
                    break
            alive = []
            for s in socks:
                try:
                    if s.recv(4096) == b"":
                        raise ConnectionError
                    alive.append(s)  # bytes (an alert): keep reading until EOF
                except BlockingIOError:
                    alive.append(s)
                except OSError:
                    self.dropped += 1
                    s.close()
            socks = alive
            time.sleep(0.05)
        for s in socks:
            s.close()


def fds(parent):
    total = 0
    for pid in processes(parent):
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return total


def measure(kind, identities, args):
    srv = Server(kind, identities, preamble=PREAMBLE)
    out = {}
    try:
        port = srv.ports["p256"]
        pid = srv.h.pid()
        warm = IdleConnections(port, 200)
        warm.close()
        time.sleep(2)
        pss0, _ = memory_kib(pid)
        start = time.monotonic()
        idle = IdleConnections(port, args.idle, timeout=600)
        opened = time.monotonic() - start
        try:
            time.sleep(2)
            pss1, _ = memory_kib(pid)
            assert idle.all_open(), "the server dropped idle connections"
        finally:
            idle.close()
        out["idle"] = {"count": args.idle, "open_s": opened, "kib_per_conn": (pss1 - pss0) / args.idle,
                       "total_mib": (pss1 - pss0) / 1024}
        time.sleep(3)

        for name, start_load in (("baseline", None), ("flood", "flood"), ("slow", "slow")):
            probe = Probe(port)
            probe.stop_at = time.monotonic() + args.seconds
            before, _ = memory_kib(pid)
            procs, slow = [], None
            if start_load == "flood":
                procs = handshake_flood(port, args.seconds)
            elif start_load == "slow":
                slow = SlowFlood(port, args.slow)
                slow.stop_at = probe.stop_at
                slow.start()
            probe.start()
            time.sleep(args.seconds / 2)
            during, _ = memory_kib(pid)
            fd_during = fds(pid)
            probe.join()
            handshakes = 0
            for p in procs:
                text, _ = p.communicate(timeout=120)
                counts = [int(line.split()[0]) for line in text.splitlines()
                          if "connections in" in line and "real seconds" in line]
                handshakes += counts[-1] if counts else 0
            if slow:
                slow.join()
            time.sleep(6)  # stalled connections end by handshake=5
            after, _ = memory_kib(pid)
            out[name] = dict(probe.summary(), pss_before_mib=before / 1024, pss_during_mib=during / 1024,
                             pss_after_mib=after / 1024, fds_during=fd_during, flood_handshakes=handshakes,
                             slow_dropped=slow.dropped if slow else 0)
    finally:
        srv.stop()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--seconds", type=int, default=30, help="length of each flood")
    ap.add_argument("--slow", type=int, default=200, help="stalled handshakes held open at once")
    args = ap.parse_args()
    # The client holds every idle connection, each Apache child a quarter:
    # as many descriptors as the hard limit allows (Apache inherits it).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    limit = hard if hard != resource.RLIM_INFINITY else 65536
    assert limit > args.idle + 1000, f"RLIMIT_NOFILE hard limit {limit} is too low for {args.idle} connections"
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    pki = Pki(Path(os.environ.get("TMPDIR", "/tmp")) / f"mgs-load-pki-{os.getpid()}")
    identities = {"p256": pki.identity("load-p256", "p256")}
    results = {kind: measure(kind, identities, args) for kind in ("gnutls", "ssl")}
    g, s = results["gnutls"], results["ssl"]
    print(f"\nidle keep-alive TLS connections ({args.idle}, event MPM, 4 children):")
    print(f"| measure | mod_gnutls | mod_ssl | ratio |\n|---|---|---|---|")
    for key, label in (("kib_per_conn", "KiB PSS per idle connection"), ("total_mib", "MiB PSS for all of them"),
                       ("open_s", "seconds to open them (Python client)")):
        print(f"| {label} | {g['idle'][key]:.1f} | {s['idle'][key]:.1f} | {g['idle'][key] / s['idle'][key]:.2f} |")
    print(f"\nprobe client (new TLS connection + GET every 0.1 s for {args.seconds} s) under each load:")
    print("| load | server | ok | failed | p50 ms | p99 ms | PSS MiB before/during/after | fds during | "
          "flood handshakes | stalled dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in ("baseline", "flood", "slow"):
        for kind, r in (("mod_gnutls", g[name]), ("mod_ssl", s[name])):
            print(f"| {name} | {kind} | {r['ok']} | {r['failed']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                  f"{r['pss_before_mib']:.1f} / {r['pss_during_mib']:.1f} / {r['pss_after_mib']:.1f} | "
                  f"{r['fds_during']} | {r['flood_handshakes']} | {r['slow_dropped']} |")


if __name__ == "__main__":
    main()

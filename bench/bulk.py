#!/usr/bin/python3
"""Bulk transfer: one connection downloading a 16 MiB static file again and
again, HTTP/1.1 (wrk -t1 -c1) and HTTP/2 (h2load -c1 -m1), side by side in
one run with mod_ssl (and upstream mod_gnutls 0.13.1 with --upstream, for
HTTP/1.1: it has no HTTP/2 support beyond ALPN); event MPM, the same P-256
certificate and file, alternating rounds, medians; the server's CPU from
/proc, per MiB sent.

    MGS_MODULE=build/mod_gnutls.so /usr/bin/python3 bench/bulk.py [--seconds 5] [--rounds 3]
        [--upstream /tmp/upstream/mod_gnutls.so]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.pki import Pki  # noqa: E402
from server_usage import cpu_seconds  # noqa: E402
from side_by_side import TlsServer  # noqa: E402

MIB = 1024 * 1024


def big_file(docroot):
    with open(docroot / "big.bin", "wb") as f:
        f.write(os.urandom(16 * MIB))
    os.chmod(docroot / "big.bin", 0o644)


class Server(TlsServer):
    def __init__(self, label, kind, chain, key, module=None):
        super().__init__(label, kind, chain, key, module=module, extra_modules=["http2"],
                         preamble="KeepAliveTimeout 60\nMaxKeepAliveRequests 0\n",
                         vhost_extra="  Protocols h2 http/1.1\n", fill=big_file)

    def http1(self, seconds):
        before = cpu_seconds(self.h.pid())
        r = subprocess.run(["wrk", "-t1", "-c1", f"-d{seconds}s", f"https://127.0.0.1:{self.port}/big.bin"],
                           capture_output=True, text=True, timeout=seconds + 60)
        used = cpu_seconds(self.h.pid()) - before
        n = re.search(r"(\d+) requests in ([\d.]+)s, ([\d.]+)([KMG]B) read", r.stdout)
        if not n:
            return float("nan"), float("nan")
        mib = int(n.group(1)) * 16 + 0.0
        secs = float(n.group(2))
        return mib * MIB / 1e6 / secs, (used / mib * 1e6 if mib else float("nan"))

    def http2(self, seconds):
        count = max(4, seconds * 20)
        before = cpu_seconds(self.h.pid())
        r = subprocess.run(["h2load", "-n", str(count), "-c", "1", "-m", "1",
                            f"https://127.0.0.1:{self.port}/big.bin"], capture_output=True, text=True, timeout=300)
        used = cpu_seconds(self.h.pid()) - before
        m = re.search(r"finished in ([\d.]+)(ms|s),", r.stdout)
        ok = re.search(r"(\d+) succeeded", r.stdout)
        if not m or not ok:
            return float("nan"), float("nan")
        secs = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        mib = int(ok.group(1)) * 16
        return mib * MIB / 1e6 / secs, (used / mib * 1e6 if mib else float("nan"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--upstream", help="upstream mod_gnutls.so (../shared/peers/build-mod_gnutls.sh)")
    args = ap.parse_args()
    pki = Pki(Path(os.environ.get("TMPDIR", "/tmp")) / f"mgs-bench-bulk-{os.getpid()}")
    chain, key = pki.identity("bench-bulk", "p256")
    servers = [Server("mod_gnutls", "gnutls", chain, key), Server("mod_ssl", "ssl", chain, key)]
    if args.upstream:
        servers.append(Server("upstream mod_gnutls 0.13.1", "gnutls", chain, key, module=args.upstream))
    rows = {}
    try:
        for _ in range(args.rounds):
            for proto in ("HTTP/1.1", "HTTP/2"):
                for s in servers:
                    if proto == "HTTP/2" and s.label.startswith("upstream"):
                        continue
                    rows.setdefault((proto, s.label), []).append(
                        s.http1(args.seconds) if proto == "HTTP/1.1" else s.http2(args.seconds))
    finally:
        for s in servers:
            s.stop()
    print(f"\nbulk, one connection, 16 MiB file, {args.seconds} s x {args.rounds} rounds (median)")
    print("| server | protocol | MB/s | vs mod_ssl | server CPU us/MiB | vs mod_ssl |")
    print("|---|---|---|---|---|---|")
    for proto in ("HTTP/1.1", "HTTP/2"):
        ref = rows[(proto, "mod_ssl")]
        ref_rate, ref_cpu = statistics.median(r for r, _ in ref), statistics.median(c for _, c in ref)
        for (p, label), vals in rows.items():
            if p != proto:
                continue
            rate, cpu = statistics.median(r for r, _ in vals), statistics.median(c for _, c in vals)
            print(f"| {label} | {proto} | {rate:.0f} | {rate / ref_rate:.2f} | {cpu:.0f} | {cpu / ref_cpu:.2f} |")


if __name__ == "__main__":
    main()

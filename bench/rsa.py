#!/usr/bin/python3
"""RSA-2048 file key: full handshakes per second and server CPU per
handshake, side by side in one run, alternating rounds:

- mod_gnutls (this module), GnuTLSRSASigner auto (libcrypto signs);
- mod_gnutls, GnuTLSRSASigner gnutls (GnuTLS/nettle signs, as before);
- mod_ssl, the same key and certificate;
- upstream mod_gnutls 0.13.1 when --upstream names its built module
  (../shared/peers/build-mod_gnutls.sh OUTDIR).

Event MPM, the same 1 KiB page, `openssl s_time -new` clients (one GET per
handshake, never resuming), server CPU from /proc. Ratios are against
mod_ssl in the same round; the table shows the median of the rounds.

    MGS_MODULE=build/mod_gnutls.so /usr/bin/python3 bench/rsa.py [--seconds 4] [--rounds 3] [--clients 2]
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


class Server(TlsServer):
    def __init__(self, label, kind, chain, key, setting=None, module=None):
        super().__init__(label, kind, chain, key, module=module,
                         gnutls_extra=f"\n  GnuTLSRSASigner {setting}" if setting else "")

    def round(self, version, seconds, clients):
        before = cpu_seconds(self.h.pid())
        procs = [subprocess.Popen(["openssl", "s_time", "-connect", f"127.0.0.1:{self.port}", "-new",
                                   "-tls" + version.replace(".", "_"), "-time", str(seconds), "-www", "/"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                 for _ in range(clients)]
        conns = 0
        for p in procs:
            out, _ = p.communicate(timeout=seconds + 60)
            n = re.findall(r"(\d+) connections in (\d+) real seconds", out)
            if n:
                conns += int(n[-1][0])
        used = cpu_seconds(self.h.pid()) - before
        return conns / seconds, (used / conns * 1e6 if conns else float("nan"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--upstream", help="upstream mod_gnutls.so (built by ../shared/peers/build-mod_gnutls.sh)")
    args = ap.parse_args()
    pki = Pki(Path(os.environ.get("TMPDIR", "/tmp")) / f"mgs-bench-rsa-{os.getpid()}")
    chain, key = pki.identity("bench-rsa", "rsa2048")
    servers = [Server("mod_gnutls, libcrypto signs (auto)", "gnutls", chain, key),
               Server("mod_gnutls, GnuTLS signs", "gnutls", chain, key, setting="gnutls"),
               Server("mod_ssl", "ssl", chain, key)]
    if args.upstream:
        servers.append(Server("upstream mod_gnutls 0.13.1", "gnutls", chain, key, module=args.upstream))
    try:
        results = {(s.label, v): [] for s in servers for v in ("1.3", "1.2")}
        for _ in range(args.rounds):
            for version in ("1.3", "1.2"):
                for s in servers:
                    results[(s.label, version)].append(s.round(version, args.seconds, args.clients))
    finally:
        for s in servers:
            s.stop()
    print(f"\nRSA-2048 file key, full handshakes, {args.clients} s_time clients, {args.seconds} s x "
          f"{args.rounds} rounds (median)")
    print("| server | TLS | handshakes/s | vs mod_ssl | server CPU us/handshake | vs mod_ssl |")
    print("|---|---|---|---|---|---|")
    for version in ("1.3", "1.2"):
        ref_rate = statistics.median(r for r, _ in results[("mod_ssl", version)])
        ref_cpu = statistics.median(c for _, c in results[("mod_ssl", version)])
        for s in servers:
            rate = statistics.median(r for r, _ in results[(s.label, version)])
            cpu = statistics.median(c for _, c in results[(s.label, version)])
            print(f"| {s.label} | {version} | {rate:.0f} | {rate / ref_rate:.2f} | {cpu:.0f} | {cpu / ref_cpu:.2f} |")


if __name__ == "__main__":
    main()

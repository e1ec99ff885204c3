#!/usr/bin/python3
"""GnuTLSKeyIsolation's cost: full TLS 1.3 handshakes per second and server
CPU per handshake with the key in the key agent (on) and in the workers
(off), side by side in one run, alternating rounds, medians:

- an ECDSA P-256 and an RSA-2048 key file (mod_ssl with the same key beside
  them, for the ratio every other table has);
- a P-256 key in a SoftHSM2 token;
- the same behind the 5 ms-per-C_Sign HSM stand-in (tests/pkcs11_delay),
  whose one-session ceiling is 200 signatures/s, with 64 clients.

Plus the latency isolation adds per handshake: one client, handshakes one
after another, on minus off. Event MPM, `openssl s_time -new` clients
(one GET per handshake), server CPU from /proc (the agent included: it is a
child of the Apache parent).

    MGS_MODULE=build/mod_gnutls.so /usr/bin/python3 bench/isolation.py [--seconds 4] [--rounds 3]
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
from harness.softhsm import SOFTHSM, SoftHsm  # noqa: E402
from server_usage import cpu_seconds  # noqa: E402
from side_by_side import TlsServer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DELAY_MODULE = ROOT / "build" / "tests" / "pkcs11-delay.so"
PIN = "24682468"


class Server(TlsServer):
    def round(self, seconds, clients):
        before = cpu_seconds(self.h.pid())
        procs = [subprocess.Popen(["openssl", "s_time", "-connect", f"127.0.0.1:{self.port}", "-new", "-tls1_3",
                                   "-time", str(seconds), "-www", "/"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                 for _ in range(clients)]
        conns = 0
        for p in procs:
            out, _ = p.communicate(timeout=seconds + 120)
            n = re.findall(r"(\d+) connections in (\d+) real seconds", out)
            if n:
                conns += int(n[-1][0])
        used = cpu_seconds(self.h.pid()) - before
        return conns / seconds, (used / conns * 1e6 if conns else float("nan"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    assert DELAY_MODULE.is_file(), f"build first: {DELAY_MODULE}"
    pki = Pki(Path(os.environ.get("TMPDIR", "/tmp")) / f"mgs-bench-isolation-{os.getpid()}")
    ec_chain, ec_key = pki.identity("bench-iso-p256", "p256")
    rsa_chain, rsa_key = pki.identity("bench-iso-rsa", "rsa2048")
    hsm = SoftHsm()
    hsm.token("bench", PIN)
    url, pub = hsm.generate("bench", PIN, "web")
    tok_chain = pki.certify("bench-iso-token", pubkey=pub)
    pin_file = hsm.dir / "pin"
    pin_file.write_text(PIN + "\n")

    def gnutls(label, chain, key, isolation, preamble="", env=None):
        pin = f"\n  GnuTLSPINSource file:{pin_file}" if env else ""
        return Server(label, "gnutls", chain, f'"{key}"', preamble=preamble, env=env,
                      gnutls_extra=f"\n  GnuTLSKeyIsolation {isolation}{pin}")

    groups = []  # (title, clients, [servers], reference label or None)
    servers = []
    try:
        for title, chain, key in (("ECDSA P-256 key file", ec_chain, ec_key), ("RSA-2048 key file", rsa_chain, rsa_key)):
            group = [gnutls(f"{title}, isolation off", chain, key, "off"),
                     gnutls(f"{title}, isolation on", chain, key, "on")]
            group.append(Server(f"{title}, mod_ssl", "ssl", chain, key))
            groups.append((title, 2, group))
        token = [gnutls(f"SoftHSM2 P-256, isolation {i}", tok_chain, url, i, preamble=f"GnuTLSPKCS11Module {SOFTHSM}\n",
                        env=hsm.env) for i in ("off", "on")]
        groups.append(("SoftHSM2 P-256 key", 2, token))
        slow_env = dict(hsm.env, MGS_P11_DELAY_MS="5")
        slow = [gnutls(f"5 ms HSM stand-in, isolation {i}", tok_chain, url, i,
                       preamble=f"GnuTLSPKCS11Module {DELAY_MODULE}\n", env=slow_env) for i in ("off", "on")]
        groups.append(("5 ms HSM stand-in (P-256 in SoftHSM2)", 64, slow))
        for _, _, g in groups:
            servers.extend(g)

        results = {s.label: [] for s in servers}
        latency = {s.label: [] for s in servers}
        for _ in range(args.rounds):
            for _, clients, group in groups:
                for s in group:
                    results[s.label].append(s.round(args.seconds, clients))
                    latency[s.label].append(s.round(args.seconds, 1)[0])
    finally:
        for s in servers:
            s.stop()
        hsm.remove()

    print(f"\nFull TLS 1.3 handshakes, openssl s_time -new, {args.seconds} s x {args.rounds} rounds (median)")
    print("| key | clients | server | handshakes/s | vs isolation off | server CPU µs/handshake | vs off |"
          " 1 client: ms/handshake | added by isolation |")
    print("|---|---|---|---|---|---|---|---|---|")
    for title, clients, group in groups:
        off = group[0].label
        ref_rate = statistics.median(r for r, _ in results[off])
        ref_cpu = statistics.median(c for _, c in results[off])
        ref_lat = 1000 / statistics.median(latency[off])
        for s in group:
            rate = statistics.median(r for r, _ in results[s.label])
            cpu = statistics.median(c for _, c in results[s.label])
            lat = 1000 / statistics.median(latency[s.label])
            print(f"| {title} | {clients} | {s.label.split(', ', 1)[1]} | {rate:.0f} | {rate / ref_rate:.2f} | "
                  f"{cpu:.0f} | {cpu / ref_cpu:.2f} | {lat:.2f} | {lat - ref_lat:+.2f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Profiles the full-handshake path of mod_gnutls: starts the bench server
(event MPM, ECDSA P-256 file key), records its child processes with
`perf record -e cpu-clock --call-graph dwarf` while `openssl s_time -new`
makes TLS 1.3 handshakes (one GET each), and prints where the server's CPU
went: by library, and the functions of ours (with the libc/libstdc++ time
they spend directly) and what our per-request variable export costs.
`--load keepalive` profiles 1 KiB requests on keep-alive connections (wrk).

    MGS_MODULE=build/mod_gnutls.so /usr/bin/python3 bench/profile.py [--seconds 3] [--load keepalive]
"""
import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.pki import Pki  # noqa: E402
from run import Server, s_time_counted, wrk  # noqa: E402
from server_usage import processes  # noqa: E402

FRAME = re.compile(r"^\s*[0-9a-f]+ (.*) \((.*)\)$")


def samples(perf_data):
    """Each sample's stack, leaf first, as (symbol, library) pairs."""
    out = subprocess.run(["perf", "script", "-i", str(perf_data)], capture_output=True, text=True,
                         timeout=600).stdout
    stack = []
    for line in out.splitlines() + [""]:
        if not line.strip():
            if stack:
                yield stack
            stack = []
        elif line[0] in " \t":
            m = FRAME.match(line)
            if m:
                stack.append((re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)), os.path.basename(m.group(2))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--load", choices=["handshakes", "keepalive"], default="handshakes",
                    help="s_time -new (TLS 1.3 full handshakes) or wrk (1 KiB requests on 16 keep-alive connections)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mgs-profile-"))
    pki = Pki(work / "pki")
    srv = Server("gnutls", {"p256": pki.identity("profile-p256", "p256")})
    data = work / "perf.data"
    try:
        pids = processes(srv.h.pid())[1:]
        perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "1000", "--call-graph", "dwarf,16384",
                                 "-o", str(data), "-p", ",".join(map(str, pids))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if args.load == "handshakes":
            rate, conns = s_time_counted(srv.ports["p256"], "1_3", "new", args.seconds)
        else:
            rate, conns = wrk(srv.ports["p256"], args.seconds)
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=120)
    finally:
        srv.stop()
    stacks = list(samples(data))
    n = len(stacks) or 1
    what = "full TLS 1.3 handshakes" if args.load == "handshakes" else "keep-alive requests"
    print(f"{conns} {what} ({rate:.0f}/s), {len(stacks)} server samples")
    # perf names inlined frames' library "inlined": count the real one.
    by_lib = collections.Counter(next((lib for _, lib in stack if lib != "inlined"), "?") for stack in stacks)
    print("\nserver CPU by library (self)")
    for lib, count in by_lib.most_common(12):
        print(f"  {100 * count / n:5.1f}%  {lib}")
    # Ours: the first frame that is not libc, libstdc++ or the kernel.
    ours = collections.Counter()
    for stack in stacks:
        for sym, lib in stack:
            if lib.startswith(("libc.so", "libstdc++")) or "kernel" in lib or lib == "inlined" or sym.startswith(("std::", "operator new")):
                continue
            if lib == "mod_gnutls.so":
                ours[sym] += 1
            break
    print(f"\nmod_gnutls's own code (with the libc/libstdc++ it calls): {100 * sum(ours.values()) / n:.1f}%")
    for sym, count in ours.most_common(10):
        print(f"  {100 * count / n:5.1f}%  {sym[:90]}")
    for what in ("mgs::TlsConnection::handshake", "mgs::tls_variables", "mgs::httpd::input_filter",
                 "mgs::httpd::output_filter"):
        inclusive = sum(1 for stack in stacks if any(sym.startswith(what) for sym, _ in stack))
        print(f"  inclusive {100 * inclusive / n:5.1f}%  {what}")


if __name__ == "__main__":
    main()

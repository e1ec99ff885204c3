"""What a running Apache costs: CPU time and memory of its processes, read
from /proc, and a crowd of idle TLS connections to measure memory with."""
import os
import socket
import ssl
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def processes(parent):
    """The Apache parent and every process below it."""
    children = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [parent]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(parent):
    """utime + stime of the parent and its live descendants (plus what the
    parent collected from children it reaped)."""
    total = 0
    for pid in processes(parent):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / TICKS


def memory_kib(parent):
    """Proportional set size (shared pages split between sharers) and RSS,
    summed over the parent and its descendants."""
    pss = rss = 0
    for pid in processes(parent):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1])
            elif line.startswith("Rss:"):
                rss += int(line.split()[1])
    return pss, rss


class IdleConnections:
    """`count` TLS connections that each made one keep-alive request and now
    sit idle (the server holds them between requests)."""

    def __init__(self, port, count, timeout=60):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.socks = []
        deadline = time.monotonic() + timeout
        request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
        try:
            for _ in range(count):
                assert time.monotonic() < deadline, f"only {len(self.socks)} of {count} idle connections in {timeout}s"
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                s = ctx.wrap_socket(raw, server_hostname="localhost")
                self.socks.append(s)
                s.sendall(request)
                self._read_response(s)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _read_response(s):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, "connection closed before the response"
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            chunk = s.recv(65536)
            assert chunk, "connection closed mid-body"
            body += chunk

    def all_open(self):
        """Every connection still serves a request (the server did not drop
        any while it was measured)."""
        request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
        for s in self.socks:
            s.sendall(request)
            self._read_response(s)
        return True

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.socks = []

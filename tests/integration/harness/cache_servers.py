"""memcached and redis-server started by the tests: loopback, free port,
stopped by pid."""
import os
import signal
import subprocess

from .ports import free_ports, wait_for_port


class CacheServer:
    def __init__(self, kind):
        self.kind = kind
        self.port = free_ports(1)[0]
        if kind == "memcache":
            cmd = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0"]
            if os.geteuid() == 0:
                cmd += ["-u", "nobody"]
        else:
            cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                   "--appendonly", "no", "--daemonize", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        assert wait_for_port(self.port, alive=lambda: self.proc.poll() is None), f"{kind} did not start"

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)

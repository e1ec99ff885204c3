"""A network HSM stand-in: `p11-kit server` exporting a SoftHSM2 token over
a unix socket. It forks a helper per client connection, so "the HSM goes
down" means killing its whole process group."""
import os
import signal
import subprocess
import time
from pathlib import Path

from .softhsm import SOFTHSM

CLIENT_MODULE = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"


class P11KitServer:
    def __init__(self, socket_path: Path, token_label, softhsm_env):
        self.socket = Path(socket_path)
        self.token = token_label
        self.env = dict(os.environ, **softhsm_env)
        self.proc = None

    @property
    def client_env(self):
        return {"P11_KIT_SERVER_ADDRESS": f"unix:path={self.socket}"}

    def start(self):
        if self.socket.exists():
            self.socket.unlink()
        self.proc = subprocess.Popen(
            ["p11-kit", "server", "-f", "-n", str(self.socket), "--provider", SOFTHSM,
             f"pkcs11:token={self.token}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=self.env)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            assert time.monotonic() < deadline, "p11-kit server did not create its socket"
            time.sleep(0.05)
        os.chmod(self.socket, 0o777)  # Apache's workers connect as www-data

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

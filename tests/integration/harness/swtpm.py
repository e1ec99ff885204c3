"""A software TPM 2.0 (swtpm) on loopback for the tests, with keys made by
tpm2-openssl (TSS2 key files) and tpm2-tools (persistent handles).

swtpm serves one client connection at a time, so keys are made before
Apache starts; its control channel is on port + 1 (what the swtpm TCTI
expects). Its state directory survives a restart, so keys stay loadable."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .ports import wait_for_port


def _pair_of_free_ports():
    for _ in range(50):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port > 65000:
            continue
        try:
            t = socket.socket()
            t.bind(("127.0.0.1", port + 1))
            t.close()
            return port
        except OSError:
            continue
    raise AssertionError("no two adjacent free ports")


class Swtpm:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mgs-swtpm-"))
        os.chmod(self.dir, 0o755)
        (self.dir / "state").mkdir()
        self.port = _pair_of_free_ports()
        self.proc = None
        self.start()
        # Wrong-authorization tests and killed TPMs count as dictionary
        # attacks; a lockout would break the tests that follow.
        self.tools("tpm2_dictionarylockout", "-s", "-n", "1000", "-t", "0", "-l", "0")

    @property
    def tcti(self):
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={self.dir / 'state'}",
             "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
             "--ctrl", f"type=tcp,port={self.port + 1},bindaddr=127.0.0.1",
             "--flags", "not-need-init,startup-clear"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        assert wait_for_port(self.port + 1, alive=lambda: self.proc.poll() is None), "swtpm did not start"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, cmd, env):
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, **env), cwd=self.dir)

    def tools(self, *cmd):
        r = self._run(list(cmd), {"TPM2TOOLS_TCTI": self.tcti})
        self._run(["tpm2_flushcontext", "-t"], {"TPM2TOOLS_TCTI": self.tcti})
        return r

    def genkey(self, name, algorithm="EC", option="group:P-256", auth=None, tcti=None, env=None):
        """A TSS2 PRIVATE KEY file made by tpm2-openssl, and its public key
        (through another TCTI, e.g. a resource manager, if given)."""
        tool_env = {"TPM2OPENSSL_TCTI": tcti or self.tcti, **(env or {})}
        key = self.dir / f"{name}.tss2.pem"
        opts = ["-pkeyopt", option]
        if auth:
            opts += ["-pkeyopt", f"user-auth:{auth}"]
        self._run(["openssl", "genpkey", "-provider", "tpm2", "-provider", "default",
                   "-algorithm", algorithm, *opts, "-out", str(key)], tool_env)
        pub = self.dir / f"{name}.pub.pem"
        passin = ["-passin", f"pass:{auth}"] if auth else []
        self._run(["openssl", "pkey", "-provider", "tpm2", "-provider", "default", "-in", str(key), *passin,
                   "-pubout", "-out", str(pub)], tool_env)
        os.chmod(key, 0o644)
        return key, pub

    def persistent_key(self, handle, alg="ecc256:ecdsa-sha256"):
        """A key made persistent at `handle` with tpm2-tools; its public key."""
        self.tools("tpm2_createprimary", "-Q", "-C", "o", "-g", "sha256", "-G", "ecc", "-c", "prim.ctx")
        self.tools("tpm2_create", "-Q", "-C", "prim.ctx", "-G", alg, "-u", "k.pub", "-r", "k.priv")
        self.tools("tpm2_load", "-Q", "-C", "prim.ctx", "-u", "k.pub", "-r", "k.priv", "-c", "k.ctx")
        self.tools("tpm2_evictcontrol", "-Q", "-C", "o", "-c", "k.ctx", handle)
        pub = self.dir / f"{handle}.pub.pem"
        self.tools("tpm2_readpublic", "-Q", "-c", handle, "-f", "pem", "-o", str(pub))
        return pub

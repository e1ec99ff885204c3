"""SoftHSM2 tokens made by the tests: in a temp dir the Apache workers
(www-data) can use, keys generated on the token with p11tool."""
import os
import shutil
import subprocess
from pathlib import Path

from .httpd import world_readable_dir

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


class SoftHsm:
    def __init__(self):
        self.dir = world_readable_dir("mgs-softhsm-")
        (self.dir / "tokens").mkdir()
        self.conf = self.dir / "softhsm2.conf"
        self.conf.write_text(f"directories.tokendir = {self.dir}/tokens\nobjectstore.backend = file\n"
                             "log.level = ERROR\n")
        os.chmod(self.conf, 0o644)
        self.env = {"SOFTHSM2_CONF": str(self.conf)}

    def _run(self, cmd, pin=None):
        env = dict(os.environ, **self.env)
        if pin:
            env["GNUTLS_PIN"] = pin
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60, env=env)

    def token(self, label, pin):
        self._run(["softhsm2-util", "--init-token", "--free", "--label", label,
                   "--so-pin", pin + "so", "--pin", pin])
        self._chown()

    def generate(self, label, pin, obj, kind="ecdsa", curve="secp256r1", bits=2048):
        args = ["--curve", curve] if kind == "ecdsa" else ["--bits", str(bits)]
        self._run(["p11tool", "--provider", SOFTHSM, "--login", "--generate-privkey", kind, *args,
                   "--label", obj, f"pkcs11:token={label}"], pin=pin)
        pub = self.dir / f"{label}-{obj}.pub"
        pub.write_text(self._run(["p11tool", "--provider", SOFTHSM, "--login", "--export-pubkey",
                                  f"pkcs11:token={label};object={obj}"], pin=pin).stdout)
        self._chown()
        return f"pkcs11:token={label};object={obj}", pub

    def store_certificate(self, label, pin, obj, cert_file):
        self._run(["p11tool", "--provider", SOFTHSM, "--login", "--write", "--load-certificate",
                   str(cert_file), "--label", obj, f"pkcs11:token={label}"], pin=pin)
        self._chown()
        return f"pkcs11:token={label};object={obj};type=cert"

    def _chown(self):
        # Apache's children open the token after dropping to www-data.
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "www-data:www-data", str(self.dir / "tokens")], check=True)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)

"""PIN sources as Apache runs them: an exec: helper runs once per
configuration load however many virtual hosts use it (Apache reads its
configuration twice at startup), and again after a graceful restart; an env:
variable is gone from Apache's environment (CGI scripts, even with
PassEnv, and /proc/PID/environ); a helper that hangs
fails startup with a clear error instead of hanging it."""
import os
import subprocess
import time

from harness.clients import curl
from harness.httpd import Httpd, vhost
from harness.ports import free_ports

PASS = "key-file-pass-6120"

CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\n\\n'
env
"""


def encrypted_identity(pki, name):
    chain, key = pki.identity(name, "p256")
    enc = key.with_name(f"{name}-enc.key")
    subprocess.run(["certtool", "--load-privkey", str(key), "--to-p8", "--password", PASS,
                    "--outfile", str(enc)], check=True, capture_output=True)
    return chain, enc


def test_exec_runs_once_per_configuration_load(pki, tmp_path):
    count = tmp_path / "runs"
    helper = tmp_path / "pin.sh"
    helper.write_text(f"#!/bin/sh\necho run >> {count}\necho {PASS}\n")
    helper.chmod(0o755)
    h = Httpd()
    ports = free_ports(2)
    body = [f'GnuTLSPINSource "exec:{helper}"']
    for i, port in enumerate(ports):
        chain, key = encrypted_identity(pki, f"exec-once-{i}")
        body.append(vhost(port, chain, key))
    h.write_config("\n".join(body), ports)
    h.start()
    try:
        for port in ports:
            assert curl(port, pki.ca_cert)[0] == 0, h.log()
        assert count.read_text() == "run\n", h.log()
        h.graceful()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and count.read_text().count("run") < 2:
            time.sleep(0.1)
        time.sleep(0.5)
        assert count.read_text() == "run\nrun\n"
        assert curl(ports[0], pki.ca_cert)[0] == 0, h.log()
        assert PASS not in h.all_logs()
    finally:
        h.remove()


def test_env_source_is_not_inherited_by_cgi(pki):
    chain, key = encrypted_identity(pki, "env-cgi")
    h = Httpd(extra_modules=["cgid", "alias", "env"], env=dict(os.environ, MGS_KEY_PASS=PASS))
    port = free_ports(1)[0]
    cgi = h.docroot("cgi-bin")
    (cgi / "env.cgi").write_text(CGI)
    os.chmod(cgi / "env.cgi", 0o755)
    h.write_config(f"ScriptSock {h.root}/run/cgid.sock\n" +
                   vhost(port, chain, key, extra=f"  GnuTLSPINSource env:MGS_KEY_PASS\n"
                                                 f"  PassEnv MGS_KEY_PASS\n"
                                                 f"  ScriptAlias /cgi-bin/ {cgi}/"), [port])
    h.start()
    try:
        rc, out, err = curl(port, pki.ca_cert, path="/cgi-bin/env.cgi")
        assert rc == 0 and out.endswith("\n200"), (out, err, h.log())
        assert "PATH=" in out  # it is the CGI's environment
        assert PASS not in out, out
        # Nor in any Apache process's environment block (what programs they
        # start inherit, and what /proc shows).
        pids = subprocess.run(["pgrep", "-s", str(os.getsid(h.pid()))], capture_output=True,
                              text=True).stdout.split()
        assert pids
        for pid in pids:
            try:
                environ = open(f"/proc/{pid}/environ", "rb").read()
            except OSError:
                continue
            assert PASS.encode() not in environ, pid
    finally:
        h.remove()


def test_a_hanging_helper_fails_startup_with_a_clear_error(pki, tmp_path):
    chain, key = encrypted_identity(pki, "exec-hangs")
    h = Httpd()
    port = free_ports(1)[0]
    h.write_config(vhost(port, chain, key, extra='  GnuTLSPINSource "exec:sleep 600"'), [port])
    t0 = time.monotonic()
    rc, out = h.start(expect_ok=False)
    took = time.monotonic() - t0
    try:
        assert rc != 0
        text = out + h.log()
        assert "GnuTLSPINSource" in text and "did not finish within 10 s" in text, text
        assert took < 40, took
        assert subprocess.run(["pgrep", "-fx", "sleep 600"]).returncode != 0
    finally:
        h.remove()

"""The manual's commands work: every ```sh block of docs/faq.md runs, in
order, in an empty directory, with the key doctor on PATH and $PORT a
server this module serves (a certificate for localhost)."""
import os
import re
import subprocess
from pathlib import Path

from harness.httpd import Httpd, vhost
from harness.ports import free_ports

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"


def sh_blocks(doc):
    return re.findall(r"^```sh\n(.*?)^```$", (DOCS / doc).read_text(), re.M | re.S)


def doctor_dir():
    path = os.environ.get("MGS_KEY_DOCTOR") or str(Path(os.environ["MGS_MODULE"]).parent / "gnutls-keystore")
    return str(Path(path).parent)


def test_faq_commands(pki, tmp_path):
    blocks = sh_blocks("faq.md")
    assert len(blocks) >= 10, "the FAQ's runnable blocks were not found"
    chain, key = pki.identity("docs-faq", "p256")
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.docroot("site", body="faq\n")
        h.write_config(vhost(port, chain, key, docroot=h.root / "site"), [port])
        h.start()
        env = {**os.environ, "PORT": str(port), "PATH": doctor_dir() + ":" + os.environ.get("PATH", "")}
        for i, block in enumerate(blocks):
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, f"docs/faq.md block {i + 1} failed:\n{block}\n{r.stdout}\n{r.stderr}"
        log = h.log()
        assert "MGS01308" in log, log  # the plain-HTTP answer was ours
    finally:
        h.remove()


def test_hsm_walkthrough(tmp_path):
    """docs/hsm.md's blocks, in one shell (they share variables), in a
    directory www-data can read: a SoftHSM2 token, a key made in it, a CA
    certificate, Apache serving with it, then the same token through
    p11-kit server as a network HSM."""
    from harness.httpd import sanitizer_env, world_readable_dir
    blocks = sh_blocks("hsm.md")
    assert len(blocks) >= 6, "the walk-through's runnable blocks were not found"
    work = world_readable_dir("mgs-doc-hsm-")
    port = free_ports(1)[0]
    script = "\n".join(f"echo '== docs/hsm.md block {i + 1}' >&2\n{b}" for i, b in enumerate(blocks))
    path = doctor_dir()
    if sanitizer_env():
        # The sanitized module needs its runtime preloaded into httpd, and
        # only into httpd (the other tools are not instrumented).
        shim = work / "shim"
        shim.mkdir()
        (shim / "apache2").write_text("#!/bin/sh\n" + "".join(f"export {k}='{v}'\n" for k, v in
                                                                 sanitizer_env().items()) +
                                      'exec /usr/sbin/apache2 "$@"\n')
        os.chmod(shim / "apache2", 0o755)
        path = f"{shim}:{path}"
    env = {**os.environ, "PORT": str(port), "PATH": path + ":" + os.environ.get("PATH", "")}
    try:
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True,
                           text=True, timeout=300)
        log = (work / "error.log").read_text() if (work / "error.log").exists() else ""
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\nerror.log:\n{log}"
        assert "Private key" in (work / "new.out").read_text() or "type=private" in (work / "new.out").read_text()
    finally:
        # Whatever a failed block left running.
        for pidfile in ("httpd.pid", "hsm.pid"):
            p = work / pidfile
            if p.exists():
                try:
                    pid = int(p.read_text())
                    os.kill(pid, 15) if pidfile == "httpd.pid" else os.killpg(pid, 9)
                except (ValueError, OSError):
                    pass
        subprocess.run(["rm", "-rf", str(work)])


def test_every_log_identifier_is_documented():
    """docs/errors.md lists every MGSnnnnn identifier the code logs."""
    root = DOCS.parent
    used = set()
    for d in ("httpd", "src", "keystore", "pkcs11", "tpm"):
        for f in (root / d).rglob("*.[ch]*"):
            used |= set(re.findall(r"MGSLOGNO\((\d{5})\)", f.read_text(errors="replace")))
    assert len(used) > 20, used
    documented = set(re.findall(r"MGS(\d{5})", (DOCS / "errors.md").read_text()))
    assert used - documented == set(), f"not in docs/errors.md: {sorted(used - documented)}"

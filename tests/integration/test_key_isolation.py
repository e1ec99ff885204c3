"""GnuTLSKeyIsolation: file and PKCS#11 keys held by the key agent process,
so that no Apache worker (the processes that talk to the network) holds a
private key, a PIN or a token session. Proven by reading the workers'
memory under load: the key's secret numbers and the PIN are there without
isolation (so the search can fail) and nowhere with it."""
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from harness.clients import curl, gnutls_cli
from harness.httpd import Httpd, vhost
from harness.ports import free_ports
from harness.process_memory import count_in_memory, found_in_memory
from harness.softhsm import SOFTHSM, SoftHsm

PIN = "93572640318"  # distinctive: searched for in memory


def agent_pids(log):
    return [int(p) for p in re.findall(r"key agent started \(pid (\d+)\)", log)]


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def workers(h):
    """Apache's children that serve connections: every child of the parent
    but the key agent."""
    agents = set(agent_pids(h.full_log()))
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(h.pid())], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if int(p) not in agents]


def mapped_files(pid):
    with open(f"/proc/{pid}/maps") as maps:
        return maps.read()


def secret_numbers(key_file, fields):
    """The key's secret numbers, big-endian, from openssl's text dump, and
    each also byte-reversed (GMP and OpenSSL keep numbers as little-endian
    limbs)."""
    text = subprocess.run(["openssl", "pkey", "-in", str(key_file), "-text", "-noout"],
                          capture_output=True, text=True, check=True).stdout
    found = {}
    for name in fields:
        m = re.search(rf"^{name}:\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M)
        assert m, (name, text)
        raw = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1))).lstrip(b"\0")
        found[name] = raw
        found[name + " (little-endian)"] = raw[::-1]
    return found


def pem_body_lines(key_file):
    """The base64 lines of the PEM block (certtool writes a text dump of
    the public half before it: not secret)."""
    text = key_file.read_text()
    body = text[text.index("-----BEGIN"):text.index("-----END")].splitlines()[1:]
    return [ln.encode() for ln in body if len(ln) >= 40]


class Load:
    """Handshakes in a loop on two threads while a test looks at memory."""

    def __init__(self, port, ca):
        self.port, self.ca = port, ca
        self.stop = threading.Event()
        self.ok, self.failed = 0, []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(2)]

    def run(self):
        while not self.stop.is_set():
            rc, out, err = curl(self.port, self.ca)
            with self.lock:
                if rc == 0 and out.endswith("\n200"):
                    self.ok += 1
                else:
                    self.failed.append((rc, err))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def find_in_workers(h, needles):
    """{needle name: [worker pids whose memory holds it]}, non-empty ones only."""
    hits = {}
    pids = workers(h)
    assert pids, "no worker processes"
    for pid in pids:
        for name in found_in_memory(pid, needles):
            hits.setdefault(name, []).append(pid)
    return hits


@pytest.mark.parametrize("mpm", ["event", "prefork"])
@pytest.mark.parametrize("key_type,fields", [("p256", ["priv"]),
                                             ("rsa2048", ["privateExponent", "prime1", "prime2"])])
def test_file_key_secret_is_in_no_worker(pki, mpm, key_type, fields):
    chain, key = pki.identity(f"isolated-{key_type}-{mpm}", key_type)
    needles = secret_numbers(key, fields)
    needles.update({f"PEM line {i}": ln for i, ln in enumerate(pem_body_lines(key))})
    for isolation in ("off", "on"):
        h = Httpd(mpm=mpm)
        h.docroot("htdocs", body="isolated\n")
        try:
            port = free_ports(1)[0]
            h.write_config(vhost(port, chain, key, extra=f"  GnuTLSKeyIsolation {isolation}"), [port])
            h.start()
            with Load(port, pki.ca_cert) as load:
                time.sleep(1.5)
                hits = find_in_workers(h, needles)
            assert load.failed == [] and load.ok > 3, (load.ok, load.failed, h.log())
            numbers = {n: p for n, p in hits.items() if not n.startswith("PEM")}
            if isolation == "off":
                # The search works: without isolation the workers hold the key.
                assert numbers, "the key's secret numbers were not found in any worker without isolation"
                assert "0 TPM keys, 1 isolated keys" not in h.full_log()
            else:
                assert hits == {}, f"key material in workers with GnuTLSKeyIsolation on: {hits}"
                assert "key agent started" in h.full_log() and "0 TPM keys, 1 isolated keys" in h.full_log()
                # The agent holds it (and so the search would find it there).
                agent = agent_pids(h.full_log())[-1]
                assert {n for n in found_in_memory(agent, needles) if not n.startswith("PEM")}
        finally:
            h.remove()


@pytest.fixture(scope="module")
def token(pki):
    hsm = SoftHsm()
    hsm.token("iso", PIN)
    url, pub = hsm.generate("iso", PIN, "web")
    chain = pki.certify("isolated-p11", pubkey=pub)
    pin_file = hsm.dir / "pin"
    pin_file.write_text(PIN + "\n")
    os.chmod(pin_file, 0o600)
    yield hsm, url, chain, pin_file
    hsm.remove()


@pytest.mark.parametrize("mpm", ["event", "prefork"])
@pytest.mark.parametrize("pin_line", ["source", "literal"])
def test_token_pin_and_module_are_in_no_worker(pki, token, mpm, pin_line):
    hsm, url, chain, pin_file = token
    pin_conf = f"  GnuTLSPINSource file:{pin_file}" if pin_line == "source" else f"  GnuTLSPIN {PIN}"
    for isolation in ("off", "default"):
        h = Httpd(mpm=mpm, env=hsm.env)
        h.docroot("htdocs", body="isolated\n")
        try:
            port = free_ports(1)[0]
            extra = pin_conf + ("\n  GnuTLSKeyIsolation off" if isolation == "off" else "")
            h.write_config(f"GnuTLSPKCS11Module {SOFTHSM}\n" + vhost(port, chain, url, extra=extra), [port])
            h.start()
            with Load(port, pki.ca_cert) as load:
                time.sleep(1.5)
                hits = find_in_workers(h, {"PIN": PIN.encode()})
                maps = [mapped_files(p) for p in workers(h)]
                # A PIN written in httpd.conf is also in Apache's own buffer
                # of the configuration file's text, which every process it
                # forks inherits (docs/security.md: use GnuTLSPINSource).
                outside_config_text = {p: count_in_memory(p, PIN.encode()) -
                                       count_in_memory(p, f"GnuTLSPIN {PIN}".encode()) for p in workers(h)}
            assert load.failed == [] and load.ok > 3, (load.ok, load.failed, h.log())
            if isolation == "off":
                assert any(outside_config_text.values()), "the PIN was not found in any worker without isolation"
                assert any("libsofthsm2" in m for m in maps)
            else:
                # PKCS#11 keys are isolated by default: no PIN, no module.
                if pin_line == "source":
                    assert hits == {}, f"the PIN is in workers with the key in the agent: {hits}"
                assert not any(outside_config_text.values()), f"the PIN is in workers: {outside_config_text}"
                assert not any("libsofthsm2" in m for m in maps), "a worker loaded the PKCS#11 module"
                assert "0 TPM keys, 1 isolated keys" in h.full_log()
            assert PIN not in h.all_logs()
        finally:
            h.remove()


def isolated_server(pki, token, name, mpm, kind):
    """An Httpd (not started) whose one vhost has an isolated key: a key
    file, or the token's key (isolated by default); and its port."""
    port = free_ports(1)[0]
    if kind == "file":
        chain, key = pki.identity(name, "p256")
        h = Httpd(mpm=mpm)
        body = vhost(port, chain, key, extra="  GnuTLSKeyIsolation on")
    else:
        hsm, url, chain, pin_file = token
        h = Httpd(mpm=mpm, env=hsm.env)
        body = f"GnuTLSPKCS11Module {SOFTHSM}\n" + vhost(port, chain, url, extra=f"  GnuTLSPINSource file:{pin_file}")
    h.docroot("htdocs", body="isolated\n")
    h.write_config(body, [port])
    return h, port


@pytest.mark.parametrize("kind", ["file", "token"])
@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_graceful_restarts_under_load_keep_the_agent(pki, token, mpm, kind):
    """Handshakes in flight through graceful restarts: none fails, and the
    agent (whose keys did not change) is kept, in event and prefork."""
    h, port = isolated_server(pki, token, f"isolated-graceful-{mpm}-{kind}", mpm, kind)
    try:
        h.start()
        (first,) = agent_pids(h.log())
        with Load(port, pki.ca_cert) as load:
            for _ in range(5):
                time.sleep(1)
                h.graceful()
            time.sleep(1)
        log = h.log()
        assert load.failed == [] and load.ok > 20, (load.ok, load.failed, log)
        assert log.count("key agent (pid %d) kept: its keys did not change" % first) == 5, log
        assert agent_pids(log) == [first], log
    finally:
        h.remove()
    assert not alive(first), "the key agent outlived Apache"


def test_restart_with_a_new_key_replaces_the_agent(pki):
    """The same path with another key behind it (a renewed key file) gets a
    new agent, which signs with the new key."""
    chain, key = pki.identity("isolated-renew", "p256")
    h = Httpd()
    h.docroot("htdocs", body="isolated\n")
    try:
        port = free_ports(1)[0]
        h.write_config(vhost(port, chain, key, extra="  GnuTLSKeyIsolation on"), [port])
        h.start()
        (first,) = agent_pids(h.log())
        chain2, key2 = pki.identity("isolated-renew-2", "p256")
        os.replace(key2, key)
        os.replace(chain2, chain)
        h.graceful()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(agent_pids(h.log())) < 2:
            time.sleep(0.1)
        pids = agent_pids(h.log())
        assert len(pids) == 2 and pids[0] == first, h.log()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and alive(first):
            time.sleep(0.1)
        assert not alive(first)
        rc, out = gnutls_cli(port, pki.ca_cert)
        assert rc == 0, out + h.log()
    finally:
        h.remove()


@pytest.mark.parametrize("kind", ["file", "token"])
@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_agent_death_under_load(pki, token, mpm, kind):
    """The agent killed under load: the parent starts another within about
    a second (for a token key it logs in again), requests queued meanwhile
    are answered by it, and handshakes go on."""
    h, port = isolated_server(pki, token, f"isolated-death-{mpm}-{kind}", mpm, kind)
    try:
        h.start()
        (first,) = agent_pids(h.log())
        with Load(port, pki.ca_cert) as load:
            time.sleep(0.5)
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and len(agent_pids(h.log())) < 2:
                time.sleep(0.1)
            before = load.ok
            time.sleep(1.5)
            after = load.ok
        log = h.log()
        assert len(agent_pids(log)) == 2, log
        assert re.search(rf"key agent \(pid {first}\) ended", log), log
        assert after > before, "no handshake completed after the new agent started"
        # Handshakes that were waiting on the dead agent's connection retry
        # once on a new one; a failure must say why.
        assert len(load.failed) <= 2, load.failed
        for rc, err in load.failed:
            assert "key agent" in log, (err, log)
    finally:
        h.remove()


def test_bad_value_fails_configtest(pki):
    chain, key = pki.identity("isolated-bad", "p256")
    h = Httpd()
    h.docroot("htdocs", body="isolated\n")
    try:
        port = free_ports(1)[0]
        h.write_config(vhost(port, chain, key, extra="  GnuTLSKeyIsolation maybe"), [port])
        rc, out = h.configtest()
        assert rc != 0
        assert "GnuTLSKeyIsolation" in out and "must be on or off, not 'maybe'" in out, out
    finally:
        h.remove()

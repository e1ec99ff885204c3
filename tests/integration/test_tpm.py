"""TPM 2.0 keys (TSS2 key files made by tpm2-openssl, a persistent handle
made by tpm2-tools) in a real swtpm, served by Apache through the key agent
process: every key type under TLS 1.2 and 1.3, the event and prefork MPMs
with concurrent clients, startup errors that say what is wrong, a TPM that
goes away under load and comes back, and an agent that dies."""
import concurrent.futures
import os
import re
import signal
import time

import pytest

from harness.clients import curl, gnutls_cli
from harness.httpd import Httpd, vhost
from harness.pki import Pki
from harness.ports import free_ports
from harness.swtpm import Swtpm
from harness.tabrmd import Tabrmd

KEY_PIN = "tpm-key-auth-7731"


@pytest.fixture(scope="module")
def tpm():
    t = Swtpm()
    keys = {
        "ec256": t.genkey("ec256", "EC", "group:P-256"),
        "ec384": t.genkey("ec384", "EC", "group:P-384"),
        "rsa2048": t.genkey("rsa2048", "RSA", "bits:2048"),
        "rsa-auth": t.genkey("rsa-auth", "RSA", "bits:2048", auth=KEY_PIN),
    }
    t.keys = keys
    t.handle_pub = t.persistent_key("0x81000020")
    # A key made on another TPM.
    other = Swtpm()
    t.foreign = other.genkey("foreign")
    other.stop()
    yield t
    t.remove()
    other.remove()


@pytest.fixture
def httpd():
    h = Httpd()
    yield h
    h.remove()


def serve(h, tpm, chain, key, extra="", mpm=None):
    port = free_ports(1)[0]
    h.docroot("htdocs", body="key sealed in a TPM\n")
    h.write_config(f"GnuTLSTPMTCTI {tpm.tcti}\n" + vhost(port, chain, key, extra=extra), [port])
    h.start()
    return port


@pytest.mark.parametrize("name", ["ec256", "ec384", "rsa2048", "rsa-auth", "handle"])
def test_every_key_type_serves_tls12_and_tls13(pki, tpm, httpd, name):
    if name == "handle":
        key, pub = "handle:0x81000020", tpm.handle_pub
    else:
        key, pub = tpm.keys[name]
    chain = pki.certify(f"tpm-{name}", pubkey=pub)
    extra = f"  GnuTLSPIN {KEY_PIN}" if name == "rsa-auth" else ""
    port = serve(httpd, tpm, chain, key, extra)
    for version in ("1.2", "1.3"):
        rc, out, err = curl(port, pki.ca_cert, version)
        assert rc == 0 and out.endswith("key sealed in a TPM\n\n200"), (version, out, err, httpd.log())
        rc, out = gnutls_cli(port, pki.ca_cert, version)
        assert rc == 0 and "key sealed in a TPM" in out, (version, out)
    if name.startswith("rsa"):
        # TLS 1.3 with an RSA key is RSA-PSS (salt = hash length): it verified above.
        rc, out = gnutls_cli(port, pki.ca_cert, "1.3")
        assert "RSA-PSS" in out, out
    assert KEY_PIN not in httpd.all_logs()


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_concurrent_clients_share_the_agent(pki, tpm, mpm):
    key, pub = tpm.keys["ec256"]
    chain = pki.certify(f"tpm-conc-{mpm}", pubkey=pub)
    h = Httpd(mpm=mpm)
    try:
        port = serve(h, tpm, chain, key)

        def one(i):
            rc, out, _ = curl(port, pki.ca_cert, "1.3" if i % 2 else "1.2")
            return rc == 0 and out.endswith("\n200")

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(48)))
        assert all(results), (results, h.log())
        # One agent holds the TPM for every child.
        assert len(re.findall(r"key agent started", h.log())) == 1, h.log()
    finally:
        h.remove()


def refused(h, tpm, chain, key, extra=""):
    port = free_ports(1)[0]
    h.write_config(f"GnuTLSTPMTCTI {tpm.tcti}\n<VirtualHost 127.0.0.1:{port}>\n  ServerName tpm.example\n"
                   f"  GnuTLSEnable on\n  GnuTLSCertificateFile {chain}\n  GnuTLSKeyFile {key}\n{extra}\n"
                   "</VirtualHost>", [port])
    rc, out = h.configtest()
    assert rc != 0, out
    lines = [l for l in out.splitlines() if "GnuTLSKeyFile" in l]
    assert len(lines) == 1, out
    line = lines[0]
    assert "tpm.example" in line and str(key) in line, line
    rc2, out2 = h.start(expect_ok=False)
    assert rc2 != 0
    return line


def test_no_tpm_at_the_tcti(pki, tpm, httpd):
    key, pub = tpm.keys["ec256"]
    chain = pki.certify("tpm-nowhere", pubkey=pub)
    port = free_ports(1)[0]
    dead = free_ports(1)[0]
    httpd.write_config(f"GnuTLSTPMTCTI swtpm:host=127.0.0.1,port={dead}\n" + vhost(port, chain, key), [port])
    rc, out = httpd.configtest()
    assert rc != 0
    assert f"no TPM reachable at swtpm:host=127.0.0.1,port={dead}" in out, out
    assert "GnuTLSKeyFile" in out and str(key) in out, out


def test_key_from_another_tpm(pki, tpm, httpd):
    key, pub = tpm.foreign
    line = refused(httpd, tpm, pki.certify("tpm-foreign", pubkey=pub), key)
    assert "cannot load the key" in line and re.search(r"\(0x[0-9a-f]+\)", line), line


def test_wrong_key_authorization(pki, tpm, httpd):
    key, pub = tpm.keys["rsa-auth"]
    line = refused(httpd, tpm, pki.certify("tpm-wrongauth", pubkey=pub), key, "  GnuTLSPIN not-the-pin-5521")
    assert "refused the key's authorization" in line and "GnuTLSPIN" in line, line
    assert "not-the-pin-5521" not in httpd.all_logs() + line


def test_wrong_srk_authorization(pki, tpm, httpd):
    key, pub = tpm.keys["ec256"]
    line = refused(httpd, tpm, pki.certify("tpm-wrongsrk", pubkey=pub), key, "  GnuTLSSRKPIN bad-owner-auth-88")
    assert "GnuTLSSRKPIN" in line and re.search(r"\(0x[0-9a-f]+\)", line), line
    assert "bad-owner-auth-88" not in httpd.all_logs() + line


def test_key_that_does_not_match_the_certificate(pki, tpm, httpd):
    key, _ = tpm.keys["ec256"]
    _, other_pub = tpm.keys["ec384"]
    line = refused(httpd, tpm, pki.certify("tpm-mismatch", pubkey=other_pub), key)
    assert "does not match" in line, line


def test_malformed_tss2_file(pki, tpm, httpd, tmp_path):
    bad = tmp_path / "broken.tss2.pem"
    bad.write_text("-----BEGIN TSS2 PRIVATE KEY-----\nMAMCAQA=\n-----END TSS2 PRIVATE KEY-----\n")
    _, pub = tpm.keys["ec256"]
    line = refused(httpd, tpm, pki.certify("tpm-broken", pubkey=pub), bad)
    assert "not a valid TSS2 PRIVATE KEY" in line, line


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_tpm_outage_and_recovery(pki, mpm):
    tpm = Swtpm()  # its own TPM: this test stops it
    h = Httpd(mpm=mpm)
    try:
        key, pub = tpm.genkey("outage")
        chain = pki.certify(f"tpm-outage-{mpm}", pubkey=pub)
        port = serve(h, tpm, chain, key)
        parent = h.pid()

        def one(_=None):
            start = time.monotonic()
            rc, out, _ = curl(port, pki.ca_cert, "1.3")
            return rc == 0 and out.endswith("\n200"), time.monotonic() - start

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert all(ok for ok, _ in pool.map(one, range(16))), h.log()
            tpm.stop()
            down = list(pool.map(one, range(16)))
            assert not any(ok for ok, _ in down), "handshakes succeeded without the TPM"
            assert max(t for _, t in down) < 2.0, f"failures were not fast: {down}"
            os.kill(parent, 0)

            tpm.start()
            back = time.monotonic()
            recovered = None
            while time.monotonic() - back < 10:
                if one()[0]:
                    recovered = time.monotonic() - back
                    break
                time.sleep(0.1)
            assert recovered is not None and recovered < 5.0, (recovered, h.log())
            assert all(ok for ok, _ in pool.map(one, range(16))), h.log()
        log = h.log()
        # The agent owns the TPM: one line when it goes, one when it is back.
        assert len(re.findall(r"TPM key agent: the TPM at .* cannot sign", log)) == 1, log
        assert len(re.findall(r"TPM key agent: the TPM at .* answers again", log)) == 1, log
        assert "Segmentation fault" not in log and "exit signal" not in log
    finally:
        h.remove()
        tpm.remove()


def test_agent_that_dies_is_restarted(pki, tpm, httpd):
    key, pub = tpm.keys["ec256"]
    port = serve(httpd, tpm, pki.certify("tpm-agentdies", pubkey=pub), key)
    assert curl(port, pki.ca_cert)[0] == 0
    agent = int(re.findall(r"key agent started \(pid (\d+)\)", httpd.log())[-1])
    os.kill(agent, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if curl(port, pki.ca_cert)[0] == 0 and len(re.findall(r"key agent started", httpd.log())) >= 2:
            break
        time.sleep(0.2)
    log = httpd.log()
    assert re.search(rf"key agent \(pid {agent}\) ended", log), log
    rc, out, err = curl(port, pki.ca_cert)
    assert rc == 0 and out.endswith("\n200"), (out, err, log)


def agent_pids(log):
    return [int(p) for p in re.findall(r"key agent started \(pid (\d+)\)", log)]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"


# Under prefork every child gets SIGUSR1 at a graceful restart: a worker
# waiting for the agent's answer must not fail its handshake for it (it
# once did, 1 in 765: recv() returned EINTR).
@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_graceful_restarts_under_load_fail_no_handshake(pki, tpm, mpm):
    """Handshakes in flight while Apache restarts gracefully complete: the
    key agent is kept across restarts whose TPM keys did not change (it was
    stopped under the old generation's children, which failed their
    handshakes: bench/soak.py found it), and the new generation does not
    check its keys on the TPM the agent holds them in."""
    import threading
    key, pub = tpm.keys["ec256"]
    h = Httpd(mpm=mpm)
    try:
        port = serve(h, tpm, pki.certify("tpm-graceful-load", pubkey=pub), key)
        first = agent_pids(h.log())
        assert len(first) == 1, h.log()
        stop = threading.Event()
        results = {"ok": 0, "failed": []}
        lock = threading.Lock()

        def client():
            while not stop.is_set():
                rc, out, err = curl(port, pki.ca_cert)
                with lock:
                    if rc == 0 and out.endswith("\n200"):
                        results["ok"] += 1
                    else:
                        results["failed"].append((rc, err))

        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        for _ in range(6):
            time.sleep(1)
            h.graceful()
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        log = h.log()
        assert results["failed"] == [], (results, log)
        assert results["ok"] > 20, results
        assert log.count("key agent (pid %d) kept: its keys did not change" % first[0]) == 6, log
        assert agent_pids(log) == first, log
        assert "MGS01301" not in log, log
        agent = first[0]
    finally:
        h.remove()
    assert not alive(agent), "the key agent outlived Apache"


def test_configtest_while_serving(pki, tpm, httpd):
    """`apachectl configtest` (and the checking pass of `apachectl
    graceful`) checks the keys in its own process while the agent serves
    them; on a TPM without a resource manager (swtpm) that flushes the
    agent's objects: the agent loads the key again and no handshake fails."""
    key, pub = tpm.keys["ec256"]
    port = serve(httpd, tpm, pki.certify("tpm-configtest", pubkey=pub), key)
    assert curl(port, pki.ca_cert)[0] == 0
    for _ in range(2):
        rc, out = httpd.configtest()
        assert rc == 0, out
        for _ in range(3):
            rc, out, err = curl(port, pki.ca_cert)
            assert rc == 0 and out.endswith("\n200"), (out, err, httpd.log())
    assert "MGS01301" not in httpd.log(), httpd.log()
    # swtpm has no resource manager: the check did flush the agent's key.
    assert "the TPM no longer held the key (another program flushed it); loading it again" in httpd.log()


def test_restart_with_other_keys_replaces_the_agent(pki, tpm, httpd):
    """A restart that adds a TPM key starts a new agent (and stops the old
    one); one that leaves no TPM key stops it."""
    ec_key, ec_pub = tpm.keys["ec256"]
    rsa_key, rsa_pub = tpm.keys["rsa2048"]
    ec_chain = pki.certify("tpm-replace-ec", pubkey=ec_pub)
    rsa_chain = pki.certify("tpm-replace-rsa", pubkey=rsa_pub)
    port = serve(httpd, tpm, ec_chain, ec_key)
    assert curl(port, pki.ca_cert)[0] == 0
    (first,) = agent_pids(httpd.log())
    port2 = free_ports(1)[0]
    httpd.write_config(f"GnuTLSTPMTCTI {tpm.tcti}\n" + vhost(port, ec_chain, ec_key) + "\n" +
                       vhost(port2, rsa_chain, rsa_key), [port, port2])
    httpd.graceful()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(agent_pids(httpd.log())) < 2:
        time.sleep(0.1)
    pids = agent_pids(httpd.log())
    assert len(pids) == 2 and pids[0] == first, httpd.log()
    assert not alive(first)
    for p in (port, port2):
        deadline = time.monotonic() + 10
        while True:
            rc, out, err = curl(p, pki.ca_cert)
            if rc == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert rc == 0 and out.endswith("\n200"), (p, out, err, httpd.log())
    # No TPM key left: the agent stops.
    file_chain, file_key = pki.identity("tpm-replace-file", "p256")
    httpd.write_config(vhost(port, file_chain, file_key), [port])
    httpd.graceful()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and alive(pids[1]):
        time.sleep(0.1)
    assert not alive(pids[1]), httpd.log()
    time.sleep(0.5)
    assert curl(port, pki.ca_cert)[0] == 0


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_through_the_tpm2_abrmd_resource_manager(pki, mpm):
    tpm = Swtpm()
    abrmd = Tabrmd(tpm)
    h = Httpd(mpm=mpm, env=abrmd.env)
    try:
        key, pub = tpm.genkey("abrmd", tcti=abrmd.tcti, env=abrmd.env)
        chain = pki.certify(f"tpm-abrmd-{mpm}", pubkey=pub)
        port = free_ports(1)[0]
        h.docroot("htdocs", body="key sealed in a TPM\n")
        h.write_config(f"GnuTLSTPMTCTI {abrmd.tcti}\n" + vhost(port, chain, key), [port])
        h.start()

        def one(i):
            rc, out, _ = curl(port, pki.ca_cert, "1.3" if i % 2 else "1.2")
            return rc == 0 and out.endswith("\n200")

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert all(pool.map(one, range(32))), h.log()
        # A resource manager serves many clients: configtest works beside
        # the running server's key agent (with bare swtpm it would wait).
        rc, out = h.configtest()
        assert rc == 0, out
    finally:
        h.remove()
        abrmd.stop()
        tpm.remove()


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_tpm_key_and_isolated_key_file_share_the_agent(pki, tpm, mpm):
    """One agent holds a TPM key and an isolated key file: both vhosts
    serve, under concurrent handshakes (the TPM's commands take turns, the
    file key's do not wait for them), and graceful restarts keep it."""
    import concurrent.futures
    key, pub = tpm.keys["ec256"]
    tpm_chain = pki.certify(f"tpm-mixed-{mpm}", pubkey=pub)
    file_chain, file_key = pki.identity(f"file-mixed-{mpm}", "p256")
    h = Httpd(mpm=mpm)
    try:
        ports = free_ports(2)
        h.docroot("htdocs", body="key sealed in a TPM\n")
        h.write_config(f"GnuTLSTPMTCTI {tpm.tcti}\n" + vhost(ports[0], tpm_chain, key) + "\n" +
                       vhost(ports[1], file_chain, file_key, extra="  GnuTLSKeyIsolation on"), ports)
        h.start()
        assert "1 TPM keys, 1 isolated keys" in h.log(), h.log()
        (agent,) = agent_pids(h.log())
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda i: curl(ports[i % 2], pki.ca_cert), range(36)))
        assert all(rc == 0 and out.endswith("\n200") for rc, out, _ in results), (results, h.log())
        h.graceful()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "kept: its keys did not change" not in h.log():
            time.sleep(0.1)
        assert f"key agent (pid {agent}) kept: its keys did not change" in h.log(), h.log()
        for port in ports:
            rc, out, err = curl(port, pki.ca_cert)
            assert rc == 0 and out.endswith("\n200"), (out, err, h.log())
    finally:
        h.remove()

"""The TPM key agent under a hostile local user and a hung TPM: who may
connect (peer credentials and the token), the agent's own user and memory
protection, the descriptors it keeps, secrets in the workers, and stop with
a TPM that no longer answers."""
import os
import pwd
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness.clients import curl
from harness.httpd import Httpd, vhost
from harness.ports import free_ports
from harness.process_memory import memory_holds
from harness.swtpm import Swtpm

KEY_PIN = "agent-key-auth-5519"
SRK_PIN = ""  # swtpm's owner hierarchy has no authorization


@pytest.fixture(scope="module")
def tpm():
    t = Swtpm()
    t.ec = t.genkey("ec256", "EC", "group:P-256")
    t.rsa_auth = t.genkey("rsa-auth", "RSA", "bits:2048", auth=KEY_PIN)
    yield t
    t.remove()


@pytest.fixture
def server(pki, tpm, tmp_path):
    """An httpd whose TPM key has an authorization value given by a PIN file
    (so the value is not in httpd.conf's text)."""
    key, pub = tpm.rsa_auth
    chain = pki.certify("agent-hardening", pubkey=pub)
    pin_file = tmp_path / "key.pin"
    pin_file.write_text(KEY_PIN + "\n")
    h = Httpd()
    port = free_ports(1)[0]
    h.docroot("htdocs", body="tpm agent\n")
    h.write_config(f"GnuTLSTPMTCTI {tpm.tcti}\n" +
                   vhost(port, chain, key, extra=f"  GnuTLSPINSource file:{pin_file}"), [port])
    h.start()
    rc, out, err = curl(port, pki.ca_cert)
    assert rc == 0, (err, h.log())
    yield h, port
    h.remove()


def agent_pid(h):
    return int(re.findall(r"key agent started \(pid (\d+)\)", h.log())[-1])


def agent_address(pid):
    """The agent's abstract socket name, from the socket inodes it holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for line in open("/proc/net/unix").read().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes and fields[7].startswith("@mod_gnutls-key-agent-"):
            return "\0" + fields[7][1:]
    raise AssertionError("no agent socket found")


# Connects to the agent, sends 32 bytes (a guessed token) and a request, and
# prints what came back: "closed" if the agent hung up.
PROBE = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
s.connect(sys.argv[1].replace("@", "\0", 1))
try:
    s.send(bytes(32))
    s.send(b"\0" * 16 + b"request")
    print("answered" if s.recv(4096) else "closed")
except (BrokenPipeError, ConnectionResetError):
    print("closed")
except socket.timeout:
    print("timeout")
"""


def probe(address, user=None):
    cmd = ["/usr/bin/python3", "-c", PROBE, address.replace("\0", "@", 1)]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return r.stdout.strip() + r.stderr


def test_other_users_and_wrong_tokens_are_refused(pki, server):
    h, port = server
    address = agent_address(agent_pid(h))
    # A local user who is neither root nor Apache's User.
    assert probe(address, user=65534) == "closed"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "refused a connection from uid 65534" not in h.log():
        time.sleep(0.1)
    assert "refused a connection from uid 65534" in h.log()
    # Root, but without the token.
    assert probe(address) == "closed"
    # A connection that never authenticates is closed within the deadline.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(address)
    t0 = time.monotonic()
    assert s.recv(16) == b""
    assert time.monotonic() - t0 < 3
    s.close()
    # None of it got in the way of real clients.
    rc, out, err = curl(port, pki.ca_cert)
    assert rc == 0 and out.endswith("\n200"), (err, h.log())


def test_a_flood_of_idle_connections_does_not_lock_out_workers(pki, server):
    h, port = server
    address = agent_address(agent_pid(h))
    idle = []
    try:
        for _ in range(300):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(address)
            idle.append(s)
        for _ in range(5):
            rc, out, err = curl(port, pki.ca_cert)
            assert rc == 0 and out.endswith("\n200"), (err, h.log())
        # The agent holds at most its cap of unauthenticated connections.
        assert len(os.listdir(f"/proc/{agent_pid(h)}/fd")) < 100
    finally:
        for s in idle:
            s.close()


def test_agent_drops_root_keeps_only_its_descriptors_and_is_not_dumpable(server):
    h, port = server
    pid = agent_pid(h)
    status = open(f"/proc/{pid}/status").read()
    uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
    try:
        expected = pwd.getpwnam("tss").pw_uid
    except KeyError:
        expected = pwd.getpwnam("www-data").pw_uid
    assert uid == expected, status
    assert f"as uid {expected}" in h.log()
    # A process that is not dumpable has its /proc files owned by root, so
    # processes of its own user (and Apache's workers) cannot read its memory.
    assert os.stat(f"/proc/{pid}/mem").st_uid == 0
    # No inherited descriptors: not Apache's listening socket, not the
    # config or log files other than the error log.
    listeners = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == "0A":
            listeners.add(f[9])
    targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert not any(t == f"socket:[{i}]" for t in targets for i in listeners), targets
    files = [t for t in targets if t.startswith("/") and not t.startswith("/dev/")]
    assert all(t == str(h.root / "logs" / "error.log") for t in files), targets


def test_workers_hold_no_key_authorization(pki, server):
    h, port = server
    for _ in range(3):
        assert curl(port, pki.ca_cert)[0] == 0
    parent = h.pid()
    children = [int(p) for p in subprocess.run(["pgrep", "-P", str(parent)], capture_output=True,
                                                 text=True).stdout.split()]
    workers = [p for p in children if p != agent_pid(h)]
    assert workers
    for w in workers:
        assert not memory_holds(w, KEY_PIN.encode()), f"worker {w} holds the key's PIN"
    # The agent does hold it (so the search above can find it).
    assert memory_holds(agent_pid(h), KEY_PIN.encode())


def test_stop_does_not_hang_on_a_hung_tpm(pki, tpm):
    key, pub = tpm.ec
    chain = pki.certify("agent-hung", pubkey=pub)
    h = Httpd()
    port = free_ports(1)[0]
    h.write_config(f"GnuTLSTPMTCTI {tpm.tcti}\n" + vhost(port, chain, key), [port])
    h.start()
    try:
        assert curl(port, pki.ca_cert)[0] == 0
        pid = agent_pid(h)
        os.kill(tpm.proc.pid, signal.SIGSTOP)  # the TPM stops answering
        client = threading.Thread(target=curl, args=(port, pki.ca_cert))
        client.start()
        time.sleep(1)  # the agent is now waiting for the TPM
        t0 = time.monotonic()
        h.stop()
        took = time.monotonic() - t0
        client.join()
        # Apache waits a few seconds for the agent, then kills it.
        assert took < 12, (took, h.log()[-3000:])
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read()
    finally:
        os.kill(tpm.proc.pid, signal.SIGCONT)
        h.remove()

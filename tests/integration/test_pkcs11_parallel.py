"""Signing with a token key does not serialise a process's handshakes on one
session: with a network-HSM stand-in (a PKCS#11 module forwarding to
SoftHSM2 with 5 ms per C_Sign) and one Apache child, concurrent clients make
the child sign on several sessions at once. (The rate this buys is measured
by bench/, not asserted here.)"""
import concurrent.futures
import os
import re
from pathlib import Path

import pytest

from harness.clients import curl
from harness.httpd import Httpd, vhost
from harness.ports import free_ports
from harness.softhsm import SoftHsm

PIN = "97531975"


@pytest.mark.parametrize("isolation", ["off", "on"])
def test_one_child_signs_in_parallel(pki, tmp_path, isolation):
    """isolation off: the child's threads sign on several sessions at once;
    on (the default for token keys): the key agent does, one thread per
    connection of the child's pool."""
    delay_module = os.environ.get("MGS_P11_DELAY_MODULE")
    assert delay_module and Path(delay_module).is_file(), "MGS_P11_DELAY_MODULE must name the built module"
    hsm = SoftHsm()
    hsm.token("slow", PIN)
    url, pub = hsm.generate("slow", PIN, "web")
    chain = pki.certify("pkcs11-parallel", pubkey=pub)
    stats_dir = hsm.dir / "stats"
    stats_dir.mkdir()
    os.chmod(stats_dir, 0o777)  # the children (www-data) write here
    stats = stats_dir / "in-flight"
    env = dict(hsm.env, MGS_P11_DELAY_MS="5", MGS_P11_DELAY_STATS=str(stats))
    h = Httpd(mpm="event", env=env)
    try:
        port = free_ports(1)[0]
        h.docroot("htdocs", body="slow hsm\n")
        h.write_config(f"GnuTLSPKCS11Module {delay_module}\n" +
                       vhost(port, chain, f'"{url}"', extra=f"  GnuTLSPIN {PIN}\n  GnuTLSKeyIsolation {isolation}"),
                       [port])
        # One child with enough threads for every client.
        text = h.conf.read_text()
        for line in ("StartServers 2", "ServerLimit 4", "MaxRequestWorkers 16"):
            text = text.replace(line, "")
        h.conf.write_text(text + "\nStartServers 1\nServerLimit 1\nThreadsPerChild 32\nMaxRequestWorkers 32\n"
                                 "MinSpareThreads 1\nMaxSpareThreads 32\n")
        h.start()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda _: curl(port, pki.ca_cert, "1.3")[0] == 0, range(96)))
        assert all(results), h.log()
        counts = {p.name: int(p.read_text()) for p in stats_dir.glob("in-flight.*")}
        children = {k: v for k, v in counts.items() if int(k.split(".")[1]) != h.pid()}
        agents = re.findall(r"key agent started \(pid (\d+)\)", h.full_log())
        if isolation == "on":
            # Only the agent signs (the parent checked the key at startup).
            assert len(agents) == 1 and set(children) == {f"in-flight.{agents[0]}"}, (counts, h.full_log())
        else:
            assert agents == [], h.full_log()
        assert children, (counts, h.log())
        assert max(children.values()) > 1, f"signatures never overlapped in the signing process: {counts}"
    finally:
        h.remove()
        hsm.remove()

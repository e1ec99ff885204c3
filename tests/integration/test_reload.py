"""`apachectl graceful` (SIGUSR1) re-reads changed keys and certificates."""
import shutil
import time

from harness.clients import peer_certificate
from harness.httpd import Httpd, vhost
from harness.ports import free_ports


def test_graceful_picks_up_new_certificate_and_key(pki):
    old_chain, old_key = pki.identity("reload-old", "p256", cn="before.reload")
    new_chain, new_key = pki.identity("reload-new", "rsa2048", cn="after.reload")
    live_chain = pki.root / "live-chain.pem"
    live_key = pki.root / "live.key"
    shutil.copy(old_chain, live_chain)
    shutil.copy(old_key, live_key)
    for mpm in ("event", "prefork"):
        h = Httpd(mpm=mpm)
        try:
            port = free_ports(1)[0]
            h.write_config(vhost(port, live_chain, live_key), [port])
            h.start()
            assert "CN=before.reload" in peer_certificate(port, pki.ca_cert)
            parent = h.pid()
            shutil.copy(new_chain, live_chain)
            shutil.copy(new_key, live_key)
            h.graceful()
            deadline = time.monotonic() + 15
            seen = ""
            while time.monotonic() < deadline:
                seen = peer_certificate(port, pki.ca_cert)
                if "CN=after.reload" in seen:
                    break
                time.sleep(0.2)
            assert "CN=after.reload" in seen, seen
            assert h.pid() == parent, "graceful must not replace the parent"
        finally:
            h.remove()
            shutil.copy(old_chain, live_chain)
            shutil.copy(old_key, live_key)

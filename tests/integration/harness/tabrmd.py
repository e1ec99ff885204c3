"""tpm2-abrmd (the user-space TPM resource manager) in front of a swtpm, on a
private D-Bus session bus: many clients at once, as with /dev/tpmrm0."""
import os
import signal
import subprocess
import time
import uuid


class Tabrmd:
    def __init__(self, swtpm):
        self.bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                                    stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.address = self.bus.stdout.readline().strip()
        assert self.address.startswith("unix:"), self.address
        self.name = f"com.intel.tss2.Tabrmd.mgs{uuid.uuid4().hex[:8]}"
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.address)
        self.proc = subprocess.Popen(["tpm2-abrmd", "--session", "--allow-root", "--dbus-name", self.name,
                                      "--tcti", swtpm.tcti], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        # Ready once its name is on the bus.
        deadline = time.monotonic() + 15
        while True:
            r = subprocess.run(["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
                                "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
                                f"string:{self.name}"], env=env, capture_output=True, text=True)
            if "boolean true" in r.stdout:
                break
            assert self.proc.poll() is None and time.monotonic() < deadline, "tpm2-abrmd did not start"
            time.sleep(0.1)

    @property
    def tcti(self):
        return f"tabrmd:bus_name={self.name},bus_type=session"

    @property
    def env(self):
        return {"DBUS_SESSION_BUS_ADDRESS": self.address}

    def stop(self):
        for p in (self.proc, self.bus):
            if p and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)

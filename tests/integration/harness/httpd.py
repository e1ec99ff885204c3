"""A real Apache httpd with the module under test: its own ServerRoot in a
temp dir, loopback ports only, started in its own session (prefork signals
its process group) and stopped by pid."""
import os
import signal
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .ports import free_ports, wait_for_port

APACHE = "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"


def module_path():
    path = os.environ.get("MGS_MODULE")
    assert path, "MGS_MODULE must name the built mod_gnutls.so"
    assert Path(path).is_file(), f"MGS_MODULE={path} does not exist"
    return path


def world_readable_dir(prefix):
    """A temp dir Apache's workers (www-data) can enter: pytest's own tmp
    dirs are private to root."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(d, 0o755)
    return d


def sanitizer_env():
    """Under the sanitizer build (ci/sanitize.sh sets MGS_PRELOAD to the ASan
    runtime and libstdc++, and MGS_SANITIZER_LOGS to a directory every user can write):
    the environment that makes httpd load the sanitized module and write
    every report to that directory, where conftest.py finds it."""
    preload = os.environ.get("MGS_PRELOAD")
    logs = os.environ.get("MGS_SANITIZER_LOGS")
    if not preload or not logs:
        return {}
    # Leak checking is off for httpd: Apache frees through pools at exit,
    # and its children _exit; the unit tests run with it on.
    return {
        "LD_PRELOAD": preload,
        "ASAN_OPTIONS": f"detect_leaks=0:log_path={logs}/asan:halt_on_error=1:"
                        "allow_user_segv_handler=1:handle_abort=1",
        "UBSAN_OPTIONS": f"print_stacktrace=1:halt_on_error=1:log_path={logs}/ubsan",
    }


# Every Httpd alive, so conftest.py can mark where each test's log begins.
LIVE = set()


class Httpd:
    def __init__(self, root=None, mpm="event", extra_modules=(), timeout=10, env=None):
        self.root = Path(root) if root else world_readable_dir("mgs-httpd-")
        self.owns_root = root is None
        self.mpm = mpm
        self.timeout = timeout
        self.extra_modules = list(extra_modules)
        self.env = {**os.environ, **sanitizer_env(), **(env or {})}
        self.log_mark = 0
        LIVE.add(self)
        self.proc = None
        for d in ("logs", "run", "htdocs"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.conf = self.root / "httpd.conf"
        self.error_log = self.root / "logs" / "error.log"
        self.pid_file = self.root / "logs" / "httpd.pid"
        self.ports = []

    def docroot(self, name="htdocs", body=None):
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        if body is not None:
            (d / "index.html").write_text(body)
            os.chmod(d / "index.html", 0o644)
        return d

    def write_config(self, body, ports):
        self.ports = list(ports)
        mods = ["mpm_" + self.mpm, "authz_core", "mime", "dir", *self.extra_modules]
        lines = [f"ServerRoot {self.root}"]
        lines += [f"LoadModule {m}_module {MODULES}/mod_{m}.so" for m in mods]
        lines += [
            f"LoadModule gnutls_module {module_path()}",
            "ServerName localhost",
            f"PidFile {self.pid_file}",
            f"ErrorLog {self.error_log}",
            "LogLevel info",
            f"DefaultRuntimeDir {self.root}/run",
            f"Mutex file:{self.root}/run default",
            "TypesConfig /etc/mime.types",
            f"Timeout {self.timeout}",
            f"DocumentRoot {self.docroot()}",
            "DirectoryIndex index.html",
        ]
        if os.geteuid() == 0:
            lines += ["User www-data", "Group www-data"]
        if self.mpm != "prefork":
            lines += ["ThreadsPerChild 8", "StartServers 2", "MaxRequestWorkers 16", "ServerLimit 4"]
        else:
            lines += ["StartServers 2", "MaxRequestWorkers 8"]
        lines += [f"Listen 127.0.0.1:{p}" for p in self.ports]
        self.conf.write_text("\n".join(lines) + "\n" + body + "\n")

    def configtest(self):
        r = subprocess.run([APACHE, "-t", "-d", str(self.root), "-f", str(self.conf)],
                           capture_output=True, text=True, timeout=60, env=self.env)
        return r.returncode, r.stdout + r.stderr

    def start(self, expect_ok=True):
        if self.error_log.exists():
            self.error_log.unlink()
        self.log_mark = 0
        self.proc = subprocess.Popen(
            [APACHE, "-d", str(self.root), "-f", str(self.conf), "-DFOREGROUND"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, env=self.env)
        if not expect_ok:
            out, _ = self.proc.communicate(timeout=60)
            rc, self.proc = self.proc.returncode, None
            return rc, out
        for p in self.ports:
            if not wait_for_port(p, alive=lambda: self.proc.poll() is None):
                out = self.stop()
                raise AssertionError(f"httpd did not listen on {p}: {out}\n{self.log()}")
        deadline = time.monotonic() + 10
        while not self.pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if sanitizer_env():
            # The sanitizer run means nothing unless httpd really has the runtime.
            maps = Path(f"/proc/{self.proc.pid}/maps").read_text()
            assert "libasan" in maps, "httpd runs without the ASan runtime under MGS_PRELOAD"
        return 0, ""

    def pid(self):
        return int(self.pid_file.read_text().strip())

    def graceful(self):
        os.kill(self.pid(), signal.SIGUSR1)

    def stop(self):
        if not self.proc:
            return ""
        out = ""
        if self.proc.poll() is not None:
            out = self.proc.communicate(timeout=15)[0] or ""
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                out, _ = self.proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                out, _ = self.proc.communicate(timeout=5)
        self.proc = None
        return out or ""

    def remove(self):
        self.stop()
        LIVE.discard(self)
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def mark_log(self):
        """From now on log() shows only what is written after this point
        (conftest.py calls it as each test begins, as pyhttpd does)."""
        self.log_mark = self.error_log.stat().st_size if self.error_log.exists() else 0

    def log(self):
        """The error log written since the current test began (or since
        this server started, if later)."""
        if not self.error_log.exists():
            return ""
        with open(self.error_log, "rb") as f:
            f.seek(self.log_mark)
            return f.read().decode(errors="replace")

    def full_log(self):
        """The whole error log since the server started: for what is only
        logged at startup."""
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def all_logs(self):
        text = ""
        for f in (self.root / "logs").glob("*"):
            if f.is_file():
                text += f.read_text(errors="replace")
        return text


def vhost(port, cert, key, name="localhost", docroot=None, extra=""):
    lines = [f"<VirtualHost 127.0.0.1:{port}>", f"  ServerName {name}", "  GnuTLSEnable on",
             f"  GnuTLSCertificateFile {cert}", f"  GnuTLSKeyFile {key}"]
    if docroot:
        lines.append(f"  DocumentRoot {docroot}")
    if extra:
        lines.append(extra)
    lines.append("</VirtualHost>")
    return "\n".join(lines)


def start_with(body_for_ports, nports=1, **kw):
    """Starts an Httpd whose config body is body_for_ports(ports)."""
    h = Httpd(**kw)
    ports = free_ports(nports)
    h.write_config(body_for_ports(ports), ports)
    h.start()
    return h, ports

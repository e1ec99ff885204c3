import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import httpd as httpd_harness  # noqa: E402
from harness.httpd import module_path  # noqa: E402
from harness.pki import Pki  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def module():
    return module_path()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


# What Apache's parent logs when a child dies of a signal a bug raises.
CRASH = re.compile(r"exit signal (Segmentation fault|Aborted|Bus error|Illegal instruction|Floating point)"
                   r"|AddressSanitizer|runtime error:")


@pytest.fixture(autouse=True)
def fresh_logs():
    """Each test sees only the error-log lines written while it runs, and
    fails if a child crashed meanwhile or any sanitizer report
    (ci/sanitize.sh) appeared."""
    for h in list(httpd_harness.LIVE):
        h.mark_log()
    logs = os.environ.get("MGS_SANITIZER_LOGS")
    before = set(os.listdir(logs)) if logs else set()
    yield
    for h in list(httpd_harness.LIVE):
        crashes = [line for line in h.log().splitlines() if CRASH.search(line)]
        if crashes:
            pytest.fail("an httpd process crashed during this test:\n" + "\n".join(crashes), pytrace=False)
    if logs:
        new = sorted(set(os.listdir(logs)) - before)
        if new:
            reports = "\n".join(Path(logs, n).read_text(errors="replace")[:20000] for n in new)
            pytest.fail(f"sanitizer reports during this test ({', '.join(new)}):\n{reports}", pytrace=False)

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness.httpd import module_path  # noqa: E402
from harness.pki import Pki  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def module():
    return module_path()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))

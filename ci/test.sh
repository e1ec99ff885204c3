#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# (GoogleTest unit tests and the pytest integration tests against a real
# httpd) through CTest; then the same tests on the AddressSanitizer +
# UndefinedBehaviorSanitizer build (ci/sanitize.sh) and a short run of
# every fuzz harness (ci/fuzz.sh); then, as root, the Debian package is
# built, installed, proven (a2enmod, configtest, HTTPS, the key doctor) and
# removed (ci/package.sh). Arguments go to the first ctest run;
# MGS_QUICK=1 skips the sanitizer, fuzz and package runs (a quick local check).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
bash ci/build.sh
(cd build && ctest --output-on-failure "$@")
if [ "${MGS_QUICK:-0}" != 1 ]; then
    bash ci/sanitize.sh
    bash ci/fuzz.sh
    if [ "$(id -u)" -eq 0 ]; then
        bash ci/package.sh
    else
        bash ci/package.sh build # installing it needs root
    fi
fi

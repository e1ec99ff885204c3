#!/usr/bin/env bash
# Builds the module and runs the side-by-side benchmark against mod_ssl.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk
bash ci/build.sh
MGS_MODULE=$PWD/build/mod_gnutls.so /usr/bin/python3 bench/run.py "$@"

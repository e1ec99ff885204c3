#!/usr/bin/env bash
# Builds the module and runs the side-by-side benchmark against mod_ssl.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
# Only the benchmark needs these: wrk, and the OpenSSL pkcs11 engine that
# lets mod_ssl use the same SoftHSM2 key.
for p in wrk libengine-pkcs11-openssl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p"
done
bash ci/build.sh
MGS_MODULE=$PWD/build/mod_gnutls.so /usr/bin/python3 bench/run.py "$@"
MGS_MODULE=$PWD/build/mod_gnutls.so /usr/bin/python3 bench/proxy_resumption.py

#!/usr/bin/env bash
# Installs every Debian package the build, the demo and the tests need.
# Idempotent: does nothing when all are present.
set -euo pipefail

packages=(
  # build
  cmake g++ make pkg-config apache2-dev libgnutls28-dev libssl-dev libp11-kit-dev libtss2-dev libgtest-dev libgmock-dev
  # run
  apache2 softhsm2 p11-kit libtss2-tcti-device0 libtss2-tcti-swtpm0 libtss2-tcti-tabrmd0
  # tests and demo: real clients and tools
  gnutls-bin curl openssl python3 python3-pytest nghttp2-client memcached redis-server testssl.sh
  swtpm tpm2-tools tpm2-openssl tpm2-abrmd dbus-daemon dbus-bin
  # fuzzing (ci/fuzz.sh): clang, its libFuzzer and sanitizer runtimes (only
  # recommended by clang), llvm-symbolizer for readable reports
  clang libclang-rt-14-dev llvm
  # the Debian package (ci/package.sh)
  debhelper dpkg-dev fakeroot
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages: ${missing[*]}; run as root (sudo) to install them" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packaged apache2 service from starting on port 80:
# the demo and the tests run their own instances.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}"

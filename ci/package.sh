#!/usr/bin/env bash
# Builds the Debian package (debian/, debhelper) into build-deb/, then, as
# root, installs it on this machine and proves it: the install enables the
# module (dh_apache2), `a2enmod gnutls`,
# `apache2ctl configtest` on Debian's own configuration, HTTPS served by the
# packaged module (a throwaway key, loopback, a free port, stopped by pid),
# the packaged key doctor checks that key; then removes the package (which
# disables the module) and
# checks that nothing of it is left.
#
#   bash ci/package.sh          # build and test (root)
#   bash ci/package.sh build    # build only
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=$repo/build-deb
pkg=libapache2-mod-gnutls-cpp

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out" && mkdir -p "$out"
# dpkg-buildpackage writes next to the source tree: build a clean copy.
mkdir -p "$work/src-tree"
tar -C "$repo" --exclude=./build --exclude='./build-*' --exclude=./.git --exclude=__pycache__ -cf - . |
  tar -C "$work/src-tree" -xf -
(cd "$work/src-tree" && dpkg-buildpackage -us -uc -b -j"$(nproc)" > "$out/build.log" 2>&1) ||
  { tail -40 "$out/build.log"; exit 1; }
cp "$work"/*.deb "$out/"
deb=$(ls "$out"/${pkg}_*.deb)
echo "built $deb"
dpkg-deb -c "$deb" | awk '{print $6}' | grep -E 'mod_gnutls.so$|gnutls.load$|gnutls.conf$|bin/gnutls-keystore$|gnutls-keystore.1' > "$out/contents"
[ "$(wc -l < "$out/contents")" -eq 5 ] || { echo "package misses files:"; dpkg-deb -c "$deb"; exit 1; }

[ "${1:-test}" = build ] && exit 0
[ "$(id -u)" -eq 0 ] || { echo "ci/package.sh: installing the package needs root" >&2; exit 1; }

# This machine's own setup is not ours to change: refuse where the test
# would replace something installed or enabled here.
for p in "$pkg" libapache2-mod-gnutls; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    echo "ci/package.sh: $p is installed on this machine; the install test would replace it (build only: ci/package.sh build)" >&2
    exit 1
  fi
done
if [ -e /etc/apache2/mods-enabled/gnutls.load ]; then
  echo "ci/package.sh: a gnutls module is enabled on this machine; the install test would disable it" >&2
  exit 1
fi

# Stops the test's Apache by pid: TERM, then KILL if it does not go.
stop_site() {
  local pidfile=$work/site/httpd.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
# Our own build's files, if installed by `cmake --install`, would be taken
# over by the package: keep them and put them back afterwards.
backup=$work/backup && mkdir -p "$backup"
restore() {
  (cd "$backup" && find . -type f -exec cp -a --parents {} / \;) 2>/dev/null || true
}
cleanup() {
  stop_site
  # -m: as a maintainer script would, so that Debian's helper does not
  # record an administrator's choice to keep the module off.
  a2dismod -q -m gnutls >/dev/null 2>&1 || true
  dpkg --purge "$pkg" >/dev/null 2>&1 || true
  restore
  rm -rf "$work"
}
trap cleanup EXIT
for f in /usr/lib/apache2/modules/mod_gnutls.so /etc/apache2/mods-available/gnutls.load \
         /etc/apache2/mods-available/gnutls.conf /var/lib/apache2/module/disabled_by_admin/gnutls; do
  if [ -e "$f" ] && ! dpkg -S "$f" >/dev/null 2>&1; then cp -a --parents "$f" "$backup/" && rm -f "$f"; fi
done

# A record that an administrator disabled a gnutls module (none is
# installed: checked above) would keep the maintainer scripts from
# enabling this one: it was moved to the backup with the files above, and
# is put back at the end.
dpkg -i "$deb" > "$out/install.log" 2>&1 || { cat "$out/install.log"; exit 1; }
# The maintainer scripts (dh_apache2) enable the module, as Debian's
# module packages do; a2enmod then finds it enabled.
[ -L /etc/apache2/mods-enabled/gnutls.load ] || { echo "installing the package did not enable the module"; exit 1; }
a2enmod -q gnutls
apache2ctl configtest > "$out/configtest.log" 2>&1 || { cat "$out/configtest.log"; exit 1; }
echo "a2enmod gnutls; apache2ctl configtest: $(tail -1 "$out/configtest.log")"

# HTTPS from the packaged module: Debian's mods-enabled, our own small
# server configuration on loopback.
site=$work/site && mkdir -p "$site/htdocs" && chmod 755 "$work" "$site" "$site/htdocs"
echo "served by the packaged module" > "$site/htdocs/index.html"
certtool --generate-privkey --key-type ecdsa --outfile "$site/key.pem" 2>/dev/null
printf 'cn = localhost\ndns_name = localhost\nexpiration_days = 2\nsigning_key\ntls_www_server\n' > "$site/tmpl"
certtool --generate-self-signed --load-privkey "$site/key.pem" --template "$site/tmpl" --outfile "$site/cert.pem" 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$site/httpd.conf" <<CONF
ServerRoot /etc/apache2
DefaultRuntimeDir $site
Mutex file:$site default
User www-data
Group www-data
Include /etc/apache2/mods-enabled/*.load
Include /etc/apache2/mods-enabled/*.conf
PidFile $site/httpd.pid
ErrorLog $site/error.log
ServerName localhost
Listen 127.0.0.1:$port
<VirtualHost 127.0.0.1:$port>
  GnuTLSEnable on
  GnuTLSCertificateFile $site/cert.pem
  GnuTLSKeyFile $site/key.pem
  DocumentRoot $site/htdocs
  <Directory $site/htdocs>
    Require all granted
  </Directory>
</VirtualHost>
CONF
apache2 -f "$site/httpd.conf" -k start
for _ in $(seq 100); do [ -f "$site/httpd.pid" ] && break; sleep 0.1; done
[ -f "$site/httpd.pid" ] || { echo "the packaged module's Apache did not start"; cat "$site/error.log"; exit 1; }
body=$(curl -sS --max-time 20 --cacert "$site/cert.pem" --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/")
[ "$body" = "served by the packaged module" ] || { echo "HTTPS from the packaged module failed: $body"; cat "$site/error.log"; exit 1; }
echo "HTTPS on 127.0.0.1:$port from the packaged module: ok"
stop_site

/usr/bin/gnutls-keystore check "$site/key.pem" --cert "$site/cert.pem" > "$out/doctor.log" 2>&1 ||
  { cat "$out/doctor.log"; exit 1; }
man -w gnutls-keystore > /dev/null 2>&1 || [ -f /usr/share/man/man1/gnutls-keystore.1.gz ] ||
  { echo "the key doctor's manual page is not installed"; exit 1; }
echo "packaged gnutls-keystore check: ok"

# Removing the package disables the module (its prerm): no enabled
# module is left pointing at a removed file.
dpkg --remove "$pkg" > "$out/remove.log" 2>&1 || { cat "$out/remove.log"; exit 1; }
[ ! -e /etc/apache2/mods-enabled/gnutls.load ] || { echo "removing the package left the module enabled"; exit 1; }
dpkg --purge "$pkg" >> "$out/remove.log" 2>&1 || { cat "$out/remove.log"; exit 1; }
for f in /usr/lib/apache2/modules/mod_gnutls.so /usr/bin/gnutls-keystore /etc/apache2/mods-available/gnutls.load \
         /etc/apache2/mods-available/gnutls.conf /etc/apache2/mods-enabled/gnutls.load; do
  [ ! -e "$f" ] || { echo "left behind after removal: $f"; exit 1; }
done
echo "removed cleanly"

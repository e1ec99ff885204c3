#!/usr/bin/env bash
# The demo: installs what is missing, builds and installs mod_gnutls, makes a
# SoftHSM2 token with an ECDSA P-256 key generated inside it, and starts
# Apache serving https://localhost:8443/ with that key. The key never exists
# outside the token.
#
#   sudo bash ci/demo.sh         # start (again)
#   sudo bash ci/demo.sh stop    # stop
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
demo=${MGS_DEMO_DIR:-/tmp/mod_gnutls-demo}
port=${MGS_DEMO_PORT:-8443}
softhsm=/usr/lib/softhsm/libsofthsm2.so
pin=${MGS_DEMO_PIN:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}

stop() {
  if [ -f "$demo/logs/httpd.pid" ]; then
    local pid; pid=$(cat "$demo/logs/httpd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$demo/logs/httpd.pid"
    echo "demo Apache (pid $pid) stopped"
  else
    echo "demo Apache is not running"
  fi
}

if [ "${1:-start}" = stop ]; then stop; exit 0; fi
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo): the demo installs packages and the module" >&2; exit 1; }

bash ci/install-deps.sh
bash ci/build.sh
cmake --install build >/dev/null
echo "installed $(apxs -q LIBEXECDIR)/mod_gnutls.so and /etc/apache2/mods-available/gnutls.{load,conf}"

stop >/dev/null
rm -rf "$demo"
mkdir -p "$demo"/{tokens,htdocs,logs,run}
export SOFTHSM2_CONF=$demo/softhsm2.conf
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$demo" > "$SOFTHSM2_CONF"

# The token and its key: generated inside SoftHSM2.
softhsm2-util --init-token --free --label mod_gnutls-demo --so-pin "$pin$pin" --pin "$pin" >/dev/null
GNUTLS_PIN=$pin p11tool --provider "$softhsm" --login --generate-privkey ecdsa --curve secp256r1 \
  --label web "pkcs11:token=mod_gnutls-demo" >/dev/null 2>&1
GNUTLS_PIN=$pin p11tool --provider "$softhsm" --login --export-pubkey \
  "pkcs11:token=mod_gnutls-demo;object=web" > "$demo/web.pub" 2>/dev/null

# A throwaway CA (file key) certifies the token's public key.
certtool --generate-privkey --key-type ecdsa --outfile "$demo/ca.key" 2>/dev/null
printf 'cn = mod_gnutls demo CA\nca\ncert_signing_key\nexpiration_days = 30\n' > "$demo/ca.tmpl"
certtool --generate-self-signed --load-privkey "$demo/ca.key" --template "$demo/ca.tmpl" \
  --outfile "$demo/ca.pem" 2>/dev/null
printf 'cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nsigning_key\nexpiration_days = 30\n' \
  > "$demo/web.tmpl"
certtool --generate-certificate --load-pubkey "$demo/web.pub" --load-ca-privkey "$demo/ca.key" \
  --load-ca-certificate "$demo/ca.pem" --template "$demo/web.tmpl" --outfile "$demo/web.pem" 2>/dev/null
cat "$demo/web.pem" "$demo/ca.pem" > "$demo/web-chain.pem"

# The PIN sits in a root-only file, read once at startup: not in httpd.conf.
umask 077; printf '%s\n' "$pin" > "$demo/token.pin"; umask 022
# Apache's children open their own token sessions after dropping to www-data.
chown -R www-data:www-data "$demo/tokens"
chmod 644 "$SOFTHSM2_CONF"
echo "<h1>Hello from mod_gnutls</h1><p>This page was served with a private key that lives in a SoftHSM2 token.</p>" \
  > "$demo/htdocs/index.html"
chmod -R a+rX "$demo/htdocs"

mods=$(apxs -q LIBEXECDIR)
cat > "$demo/httpd.conf" <<CONF
ServerRoot $demo
Include /etc/apache2/mods-available/mpm_event.load
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule mime_module $mods/mod_mime.so
LoadModule dir_module $mods/mod_dir.so
Include /etc/apache2/mods-available/gnutls.load
Include /etc/apache2/mods-available/gnutls.conf
User www-data
Group www-data
ServerName localhost
Listen 127.0.0.1:$port
PidFile $demo/logs/httpd.pid
ErrorLog $demo/logs/error.log
LogLevel info
DefaultRuntimeDir $demo/run
Mutex file:$demo/run default
TypesConfig /etc/mime.types
DocumentRoot $demo/htdocs
DirectoryIndex index.html

GnuTLSPKCS11Module $softhsm

<VirtualHost 127.0.0.1:$port>
    ServerName localhost
    GnuTLSEnable on
    GnuTLSCertificateFile $demo/web-chain.pem
    GnuTLSKeyFile "pkcs11:token=mod_gnutls-demo;object=web"
    GnuTLSPINSource file:$demo/token.pin
</VirtualHost>
CONF

apache2 -t -d "$demo" -f "$demo/httpd.conf"
setsid apache2 -d "$demo" -f "$demo/httpd.conf" -k start
for _ in $(seq 100); do
  curl -s -o /dev/null --cacert "$demo/ca.pem" "https://localhost:$port/" && break
  sleep 0.1
done
curl -sS --cacert "$demo/ca.pem" "https://localhost:$port/" >/dev/null

cat <<MSG

mod_gnutls is serving https://localhost:$port/ with its key in the SoftHSM2 token "mod_gnutls-demo".

  Try it:    curl --cacert $demo/ca.pem https://localhost:$port/
             gnutls-cli --x509cafile $demo/ca.pem -p $port localhost
  Config:    $demo/httpd.conf      Log: $demo/logs/error.log
  Stop it:   bash $repo/ci/demo.sh stop
MSG

#include "httpd/status_page.h"

#include "httpd/connection.h"
#include "httpd/server_config.h"
#include "src/tls_variables.h"

#include <apr_escape.h>
#include <http_main.h>
#include <mod_status.h>

namespace mgs::httpd {

namespace {

const char* html(request_rec* r, const std::string& s) { return ap_escape_html(r->pool, s.c_str()); }

struct VhostStatus {
    std::string name, subject, expires, backend, engine, key, health;
};

VhostStatus describe(const server_rec* s, const VhostTls& tls)
{
    VhostStatus v;
    apr_port_t port = s->addrs && s->addrs->host_port ? s->addrs->host_port : s->port;
    v.name = std::string(s->server_hostname ? s->server_hostname : "") + ":" + std::to_string(port);
    if (tls.credentials) {
        const auto& chain = tls.credentials->chain();
        v.subject = chain.leaf_subject();
        v.expires = certificate_time(gnutls_x509_crt_get_expiration_time(chain.leaf()));
        const Signer& signer = tls.credentials->signer();
        v.backend = signer.backend();
        v.engine = signer.engine();
        v.key = signer.describe();
        // This process's view: the last signature it asked for.
        bool failing = tls.signer_failing.load() || signer.health() == SignerHealth::unavailable;
        v.health = failing ? "unavailable" : "ok";
    } else {
        v.backend = v.engine = "srp";
        v.health = "ok";
    }
    return v;
}

// Upstream mod_gnutls's lines, word for word: monitoring scripts parse them.
void upstream_section(request_rec* r, bool short_report)
{
    const ServerConfig* sc = server_config(r->server);
    // Over HTTP/2 the request's connection is a stream: describe the main one.
    const conn_rec* c = r->connection->master ? r->connection->master : r->connection;
    const ConnState* st = conn_state(c);
    char* desc = sc->tls && st && st->phase == Phase::open ? gnutls_session_get_desc(st->tls.session()) : nullptr;
    if (short_report) {
        ap_rprintf(r, "Using GnuTLS version: %s\n", gnutls_check_version(nullptr));
        ap_rputs("Built against GnuTLS version: " GNUTLS_VERSION "\n", r);
        if (desc)
            ap_rprintf(r, "Current TLS session: %s\n", desc);
    } else {
        ap_rputs("<hr>\n<h2>GnuTLS Information:</h2>\n<dl>\n", r);
        ap_rprintf(r, "<dt>Using GnuTLS version:</dt><dd>%s</dd>\n", gnutls_check_version(nullptr));
        ap_rputs("<dt>Built against GnuTLS version:</dt><dd>" GNUTLS_VERSION "</dd>\n", r);
        ap_rprintf(r, "<dt>Using TLS:</dt><dd>%s</dd>\n", sc->tls ? "yes" : "no");
        if (desc)
            ap_rprintf(r, "<dt>Current TLS session:</dt><dd>%s</dd>\n", html(r, desc));
        ap_rputs("</dl>\n", r);
    }
    gnutls_free(desc);
}

int status_hook(request_rec* r, int flags)
{
    const bool short_report = flags & AP_STATUS_SHORT;
    upstream_section(r, short_report);
    if (short_report) {
        ap_rprintf(r, "GnuTLSVersion: %s\n", gnutls_check_version(nullptr));
    } else {
        ap_rputs("<h2>mod_gnutls</h2>\n", r);
        ap_rprintf(r, "<p>GnuTLS %s, mod_gnutls %s</p>\n", gnutls_check_version(nullptr), MGS_VERSION);
        ap_rputs("<table border=\"1\"><tr><th>Virtual host</th><th>Certificate subject</th><th>Expires</th>"
                 "<th>Key backend</th><th>Signed by</th><th>Key</th><th>Key health</th></tr>\n",
                 r);
    }
    int index = 0;
    for (server_rec* s = ap_server_conf; s; s = s->next) {
        const ServerConfig* sc = server_config(s);
        if (!sc->tls)
            continue;
        VhostStatus v = describe(s, *sc->tls);
        if (short_report)
            ap_rprintf(r,
                       "GnuTLSVhost%d: %s\nGnuTLSVhost%dSubject: %s\nGnuTLSVhost%dExpires: %s\n"
                       "GnuTLSVhost%dKeyBackend: %s\nGnuTLSVhost%dKeySigner: %s\nGnuTLSVhost%dKeyHealth: %s\n",
                       index, v.name.c_str(), index, v.subject.c_str(), index, v.expires.c_str(), index,
                       v.backend.c_str(), index, v.engine.c_str(), index, v.health.c_str());
        else
            ap_rprintf(r,
                       "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                       html(r, v.name), html(r, v.subject), html(r, v.expires), html(r, v.backend), html(r, v.engine),
                       html(r, v.key), html(r, v.health));
        ++index;
    }
    if (!short_report)
        ap_rputs("</table>\n<h3>Session cache</h3>\n", r);
    cache_status(r, flags);
    return OK;
}

} // namespace

void register_status_page() { APR_OPTIONAL_HOOK(ap, status_hook, status_hook, nullptr, nullptr, APR_HOOK_MIDDLE); }

} // namespace mgs::httpd

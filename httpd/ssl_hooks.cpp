#include "httpd/ssl_hooks.h"

#include "httpd/connection.h"

#include <mod_ssl.h>

namespace mgs::httpd {

namespace {

bool is_tls(const conn_rec* c)
{
    // HTTP/2 streams run on secondary connections; the TLS is the main one's.
    const ConnState* st = c ? conn_state(c->master ? c->master : c) : nullptr;
    return st && st->phase != Phase::plain_http;
}

int ssl_is_https(conn_rec* c) { return is_tls(c) ? 1 : 0; }

int conn_is_ssl(conn_rec* c) { return is_tls(c) ? OK : DECLINED; }

bool server_is_tls(const server_rec* s) { return server_config(s)->tls != nullptr; }

const char* http_scheme(const request_rec* r) { return server_is_tls(r->server) ? "https" : nullptr; }

apr_port_t default_port(const request_rec* r) { return server_is_tls(r->server) ? 443 : 0; }

} // namespace

void register_ssl_hooks()
{
    ap_hook_ssl_conn_is_ssl(conn_is_ssl, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_http_scheme(http_scheme, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_default_port(default_port, nullptr, nullptr, APR_HOOK_MIDDLE);
    APR_REGISTER_OPTIONAL_FN(ssl_is_https);
}

} // namespace mgs::httpd

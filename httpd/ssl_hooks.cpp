#include "httpd/ssl_hooks.h"

#include "httpd/backend_tls.h"
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

// mod_ssl's optional functions of Apache 2.4, for modules that still call
// them rather than ap_ssl_bind_outgoing.
int ssl_proxy_enable(conn_rec* c) { return bind_outgoing(c, nullptr, 1) == OK ? 1 : 0; }

int ssl_engine_disable(conn_rec* c)
{
    // Before pre_connection: TLS is not set up for this connection.
    apr_pool_userdata_setn(c, engine_disabled_key, nullptr, c->pool);
    return 1;
}

int ssl_engine_set(conn_rec* c, ap_conf_vector_t* dir_conf, int proxy, int enable)
{
    if (proxy)
        return enable ? (bind_outgoing(c, dir_conf, 1) == OK ? 1 : 0) : 1;
    return enable ? 1 : ssl_engine_disable(c);
}

} // namespace

void register_ssl_hooks()
{
    ap_hook_ssl_conn_is_ssl(conn_is_ssl, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_http_scheme(http_scheme, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_default_port(default_port, nullptr, nullptr, APR_HOOK_MIDDLE);
    APR_REGISTER_OPTIONAL_FN(ssl_is_https);
    APR_REGISTER_OPTIONAL_FN(ssl_proxy_enable);
    APR_REGISTER_OPTIONAL_FN(ssl_engine_disable);
    APR_REGISTER_OPTIONAL_FN(ssl_engine_set);
}

} // namespace mgs::httpd

#include "httpd/connection.h"

#include "httpd/sni.h"
#include "src/plain_http.h"

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

ap_filter_rec_t* input_filter_handle = nullptr;
ap_filter_rec_t* output_filter_handle = nullptr;

namespace {

std::string https_url(const ConnState& st)
{
    const server_rec* s = st.tls_server;
    std::string host = s->server_hostname ? s->server_hostname : "localhost";
    apr_port_t port = st.c->local_addr ? st.c->local_addr->port : 443;
    return "https://" + host + (port == 443 ? "" : ":" + std::to_string(port)) + "/";
}

} // namespace

ConnState::ConnState(conn_rec* conn, const VhostTls& vhost)
    : c(conn), tls_server(conn->base_server), transport(conn),
      tls(transport, vhost.settings, [this](std::string_view name) -> const TlsSettings* {
          server_rec* s = find_sni_server(c, name);
          if (!s)
              return nullptr;
          tls_server = s;
          return &server_config(s)->tls->settings;
      })
{
}

apr_status_t ConnState::ensure_handshake(apr_read_type_e block)
{
    switch (phase) {
    case Phase::open: return APR_SUCCESS;
    case Phase::plain_http:
    case Phase::closed: return APR_EOF;
    case Phase::failed: return APR_ECONNABORTED;
    case Phase::handshake: break;
    }
    transport.set_block(block);
    for (int retries = 0;;) {
        int rc = tls.handshake();
        if (rc == 0) {
            phase = Phase::open;
            ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, "mod_gnutls: TLS handshake done: %s, %s, SNI '%s'",
                          gnutls_protocol_get_name(gnutls_protocol_get_version(tls.session())),
                          gnutls_cipher_suite_get_name(gnutls_kx_get(tls.session()),
                                                       gnutls_cipher_get(tls.session()),
                                                       gnutls_mac_get(tls.session())) ?: "-",
                          tls.server_name().c_str());
            return transport.pass_output(true);
        }
        if (transport.saw_plain_http()) {
            std::string reply = plain_http_response(https_url(*this));
            transport.queue_bucket(apr_bucket_heap_create(reply.data(), reply.size(), nullptr, c->bucket_alloc));
            transport.pass_output(true);
            phase = Phase::plain_http;
            c->keepalive = AP_CONN_CLOSE;
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c,
                          "mod_gnutls: plain HTTP request on the TLS port of %s; answered 400 Bad Request",
                          https_url(*this).c_str());
            return APR_EOF;
        }
        if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
            if (transport.would_block() && block == APR_NONBLOCK_READ) {
                transport.pass_output(true);
                return APR_EAGAIN;
            }
            if (++retries < 100)
                continue;
        } else if (!gnutls_error_is_fatal(rc)) {
            continue; // a warning alert, e.g. unrecognized_name
        }

        apr_status_t why = transport.last_status();
        if (APR_STATUS_IS_TIMEUP(why))
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c,
                          "mod_gnutls: TLS handshake failed: the client sent nothing for %d seconds (Timeout)",
                          static_cast<int>(apr_time_sec(c->base_server->timeout)));
        else if (why == APR_EOF)
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c,
                          "mod_gnutls: TLS handshake failed: the client closed the connection");
        else
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c, "mod_gnutls: TLS handshake failed: %s",
                          tls.describe_failure(rc).c_str());
        if (why == APR_SUCCESS) {
            gnutls_alert_send_appropriate(tls.session(), rc);
            transport.pass_output(true);
        }
        phase = Phase::failed;
        c->keepalive = AP_CONN_CLOSE;
        return APR_ECONNABORTED;
    }
}

ConnState* conn_state(const conn_rec* c)
{
    return static_cast<ConnState*>(ap_get_module_config(c->conn_config, &gnutls_module));
}

int pre_connection(conn_rec* c, void*)
{
    if (c->outgoing)
        return DECLINED; // proxy connections to back ends: not handled yet
    const ServerConfig* sc = server_config(c->base_server);
    if (!sc->tls)
        return DECLINED;
    try {
        ConnState* st = pool_owned(c->pool, new ConnState(c, *sc->tls));
        ap_set_module_config(c->conn_config, &gnutls_module, st);
        ap_filter_t* in = ap_add_input_filter_handle(input_filter_handle, st, nullptr, c);
        ap_filter_t* out = ap_add_output_filter_handle(output_filter_handle, st, nullptr, c);
        st->transport.attach(in, out);
    } catch (const std::exception& e) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, "mod_gnutls: cannot set up TLS for this connection: %s",
                      e.what());
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

} // namespace mgs::httpd

#include "httpd/connection.h"

#include "httpd/backend_tls.h"
#include "httpd/errors.h"
#include "httpd/sni.h"
#include "src/key_binding.h"
#include "src/plain_http.h"

#include <cstring>

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
      tls(transport, vhost.settings, [this](const ClientHello& hello) { return on_client_hello(hello); })
{
    if (cache_enabled(tls_server)) {
        session_store.emplace(c, tls_server, vhost.session_context, vhost.cache_timeout);
        attach_session_store(tls.session(), *session_store, vhost.cache_timeout);
    }
}

// A key that cannot sign (token gone, TPM unreachable) fails every
// handshake that needs it: say so once when that starts, and once when it
// ends, rather than once per handshake.
void ConnState::report_signer_failure(const std::string& why)
{
    if (!server_config(tls_server)->tls)
        return;
    VhostTls& vhost = *server_config(tls_server)->tls;
    if (!vhost.signer_failing.exchange(true))
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c,
                      "mod_gnutls: " MGSLOGNO(01301) "%s: the private key cannot sign; TLS handshakes fail until it is back: %s",
                      server_label(tls_server).c_str(), why.c_str());
    else
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, "mod_gnutls: TLS handshake failed: %s", why.c_str());
}

void ConnState::report_signer_recovery()
{
    if (tls.is_client() || !server_config(tls_server)->tls)
        return;
    VhostTls& vhost = *server_config(tls_server)->tls;
    if (vhost.credentials && vhost.signer_failing.load(std::memory_order_relaxed) &&
        vhost.signer_failing.exchange(false))
        ap_log_cerror(APLOG_MARK, APLOG_NOTICE, 0, c, "mod_gnutls: " MGSLOGNO(01309) "%s: the private key %s signs again",
                      server_label(tls_server).c_str(), vhost.credentials->signer().describe().c_str());
}

ConnState::ConnState(conn_rec* conn, const ProxyTls& proxy)
    : c(conn), tls_server(conn->base_server), transport(conn),
      tls(transport, TlsConnection::ClientSide{proxy.priority.get(), proxy.credentials->get()})
{
    transport.ignore_plain_http();
    // GnuTLSCache also keeps the proxy's sessions with its back ends.
    if (cache_enabled(tls_server))
        session_store.emplace(c, tls_server, proxy.session_context, proxy.cache_timeout);
}

HelloDecision ConnState::on_client_hello(const ClientHello& hello)
{
    HelloDecision d;
    if (server_rec* s = find_sni_server(c, hello.server_name)) {
        tls_server = s;
        const VhostTls& vhost = *server_config(s)->tls;
        d.settings = &vhost.settings;
        if (session_store) {
            session_store->retarget(s, vhost.session_context, vhost.cache_timeout);
            attach_session_store(tls.session(), *session_store, vhost.cache_timeout);
        } else {
            gnutls_db_set_cache_expiration(tls.session(), static_cast<int>(vhost.cache_timeout.count()));
        }
    }
    if (!hello.alpn.empty()) {
        // Apache chooses (Protocols, mod_http2's proposals), as with mod_ssl.
        auto* offers = apr_array_make(c->pool, static_cast<int>(hello.alpn.size()), sizeof(const char*));
        for (const auto& p : hello.alpn)
            APR_ARRAY_PUSH(offers, const char*) = apr_pstrmemdup(c->pool, p.data(), p.size());
        if (const char* chosen = ap_select_protocol(c, nullptr, tls_server, offers))
            for (const auto& p : hello.alpn)
                if (p == chosen)
                    d.alpn = p;
    }
    return d;
}

apr_status_t ConnState::switch_protocol()
{
    std::string proto = tls.alpn_protocol();
    if (proto.empty() || proto == ap_get_protocol(c))
        return APR_SUCCESS;
    apr_status_t rv = ap_switch_protocol(c, nullptr, tls_server, proto.c_str());
    if (rv != APR_SUCCESS)
        ap_log_cerror(APLOG_MARK, APLOG_ERR, rv, c, "mod_gnutls: " MGSLOGNO(01302) "cannot switch to the negotiated protocol %s",
                      proto.c_str());
    return rv;
}

void ConnState::log_opened() const
{
    // Upstream mod_gnutls's words: administrators grep for them.
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, "mod_gnutls: TLS %sconnection opened.", tls.is_client() ? "proxy " : "");
    if (gnutls_session_is_resumed(tls.session()))
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, "mod_gnutls: TLS session resumed.");
}

apr_status_t ConnState::ensure_handshake(apr_read_type_e block)
{
    switch (phase) {
    case Phase::open: return APR_SUCCESS;
    case Phase::plain_http: return plain.avail() > 0 ? APR_SUCCESS : APR_EOF;
    case Phase::closed: return APR_EOF;
    case Phase::failed: return APR_ECONNABORTED;
    case Phase::handshake: break;
    }
    transport.set_block(block);
    if (tls.is_client() && !backend_prepared) {
        // mod_proxy names the back end after setting up the connection.
        backend_prepared = true;
        prepare_backend();
    }
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
            if (tls.is_client())
                return finish_backend_handshake();
            log_opened();
            report_signer_recovery();
            if (const auto& cert = tls.client_certificate(); cert.status == ClientCertStatus::failed)
                ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c,
                              "mod_gnutls: " MGSLOGNO(01307) "client certificate not valid, continuing with SSL_CLIENT_VERIFY=FAILED: %s",
                              cert.reason.c_str());
            if (apr_status_t rv = transport.pass_output(true); rv != APR_SUCCESS)
                return rv;
            return switch_protocol();
        }
        if (transport.saw_plain_http()) {
            // As mod_ssl does: Apache reads a stand-in request line from us
            // and answers it with its own 400 (ErrorDocument and the access
            // log apply; reject_plain_http says why), sent in the clear.
            static constexpr std::string_view stand_in = "GET / HTTP/1.0\r\n\r\n";
            auto room = plain.reserve(stand_in.size());
            std::memcpy(room.data(), stand_in.data(), stand_in.size());
            plain.commit(stand_in.size());
            phase = Phase::plain_http;
            c->keepalive = AP_CONN_CLOSE;
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c,
                          "mod_gnutls: " MGSLOGNO(01308) "plain HTTP request on the TLS port of %s; answered 400 Bad Request",
                          https_url(*this).c_str());
            return APR_SUCCESS;
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
        if (tls.is_client())
            report_backend_failure(rc, why);
        else if (APR_STATUS_IS_TIMEUP(why))
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c,
                          "mod_gnutls: TLS handshake failed: the client sent nothing for %d seconds (Timeout)",
                          static_cast<int>(apr_time_sec(c->base_server->timeout)));
        else if (why == APR_EOF)
            ap_log_cerror(APLOG_MARK, transport.received_nothing() ? APLOG_DEBUG : APLOG_INFO, 0, c,
                          "mod_gnutls: TLS handshake failed: the client closed the connection");
        else if (tls.client_certificate().status == ClientCertStatus::failed)
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c, "mod_gnutls: TLS handshake failed: client certificate rejected: %s",
                          tls.client_certificate().reason.c_str());
        else if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND || rc == GNUTLS_E_CERTIFICATE_REQUIRED) // TLS 1.2, 1.3
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c,
                          "mod_gnutls: " MGSLOGNO(01306) "TLS handshake failed: the client sent no certificate (GnuTLSClientVerify require)");
        else if (std::string why_sign = take_last_sign_error(); !why_sign.empty())
            report_signer_failure(why_sign);
        else
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c, "mod_gnutls: TLS handshake failed: %s",
                          tls.describe_failure(rc).c_str());
        if (why == APR_SUCCESS) {
            gnutls_alert_send_appropriate(tls.session(), rc);
            transport.pass_output(true);
        }
        phase = Phase::failed;
        c->keepalive = AP_CONN_CLOSE;
        if (tls.is_client())
            c->aborted = 1; // never reused by mod_proxy
        return APR_ECONNABORTED;
    }
}

ConnState* conn_state(const conn_rec* c)
{
    return static_cast<ConnState*>(ap_get_module_config(c->conn_config, &gnutls_module));
}

void attach_tls(conn_rec* c, ConnState* st)
{
    ap_set_module_config(c->conn_config, &gnutls_module, st);
    ap_filter_t* in = ap_add_input_filter_handle(input_filter_handle, st, nullptr, c);
    ap_filter_t* out = ap_add_output_filter_handle(output_filter_handle, st, nullptr, c);
    st->transport.attach(in, out);
}

int process_connection(conn_rec* c)
{
    // Handshake before any protocol handler reads, as mod_ssl does: SNI and
    // ALPN are settled first, so mod_http2 (which runs after us) finds the
    // connection already switched to h2. Failures are left to the protocol
    // handler, which reads EOF from our filter and closes cleanly.
    if (ConnState* st = conn_state(c); st && !c->master) {
        apr_bucket_brigade* bb = apr_brigade_create(c->pool, c->bucket_alloc);
        ap_get_brigade(c->input_filters, bb, AP_MODE_INIT, APR_BLOCK_READ, 0);
        apr_brigade_destroy(bb);
    }
    return DECLINED;
}

namespace {

// On a request refused for want of a client certificate, so that its
// ErrorDocument (and only that) is served.
constexpr const char* refused_note = "mod_gnutls:client-certificate-refused";

const ConnState* tls_state(const request_rec* r)
{
    const conn_rec* c = r->connection->master ? r->connection->master : r->connection;
    const ConnState* st = conn_state(c);
    return st && st->phase == Phase::open ? st : nullptr;
}

// 421 unless the virtual host serving the request is the one the handshake
// chose or compatible with it: as mod_ssl's ssl_server_compatible(),
// another virtual host may use this connection only if it would have let
// the same client in the same way.
int check_misdirected(request_rec* r, const ConnState& st)
{
    if (r->server == st.tls_server)
        return DECLINED;
    const VhostTls* asked = server_config(r->server)->tls.get();
    const VhostTls* used = server_config(st.tls_server)->tls.get();
    if (asked && used && asked->identity == used->identity)
        return DECLINED;
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "mod_gnutls: " MGSLOGNO(01304) "Host '%s' selects %s, but the TLS handshake (SNI '%s') was made for %s, whose "
                  "TLS settings or client authentication differ: 421 Misdirected Request",
                  r->hostname ? r->hostname : "", server_label(r->server).c_str(), st.tls.server_name().c_str(),
                  server_label(st.tls_server).c_str());
    return HTTP_MISDIRECTED_REQUEST;
}

bool vhost_requires_certificate(const request_rec* r)
{
    const ServerConfig* sc = server_config(r->server);
    return sc->tls && sc->tls->settings.client_auth.mode == ClientVerify::require;
}

// A virtual host's `require` is a floor: a directory may add `require`
// but not take it away (a certificate that does not verify completes the
// handshake, so the per-request check is all that stands in its way).
bool requires_certificate(const request_rec* r)
{
    if (vhost_requires_certificate(r))
        return true;
    const DirConfig* dir = dir_config(r);
    return dir && dir->client_verify == ClientVerify::require;
}

// The ErrorDocument of a request this module refused is shown, so that an
// ErrorDocument 403 can tell the person why: that one internal redirect,
// not its subrequests or further redirects.
bool is_refusal_error_document(const request_rec* r)
{
    return !r->main && r->prev && r->prev->status == HTTP_FORBIDDEN && apr_table_get(r->prev->notes, refused_note);
}

bool verified(const ConnState* st)
{
    return st && st->tls.client_certificate().status == ClientCertStatus::success;
}

int refuse(request_rec* r, const ConnState* st)
{
    const char* why = !st ? "not a TLS connection"
                      : st->tls.client_certificate().status == ClientCertStatus::failed
                          ? st->tls.client_certificate().reason.c_str()
                          : "no client certificate on this connection";
    // info, as mod_gnutls: any client with a self-signed certificate can
    // cause one of these per request.
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "mod_gnutls: " MGSLOGNO(01305) "%s: GnuTLSClientVerify require: access to %s denied: %s",
                  server_label(r->server).c_str(), r->uri, why);
    apr_table_setn(r->notes, refused_note, "1");
    return HTTP_FORBIDDEN;
}

} // namespace

int reject_plain_http(request_rec* r)
{
    ConnState* st = r->connection ? conn_state(r->connection) : nullptr;
    if (!st || st->phase != Phase::plain_http || r->main || r->prev)
        return DECLINED;
    apr_table_setn(r->notes, "error-notes", apr_pstrdup(r->pool, plain_http_error_notes(https_url(*st)).c_str()));
    return HTTP_BAD_REQUEST;
}

int check_request_vhost(request_rec* r)
{
    try {
        const ConnState* st = tls_state(r);
        if (st)
            if (int rc = check_misdirected(r, *st); rc != DECLINED)
                return rc;
        // A virtual host's `require` is checked here, before any handler
        // can answer (mod_cache's quick handler runs before access checks).
        if (vhost_requires_certificate(r) && !verified(st) && !is_refusal_error_document(r))
            return refuse(r, st);
        return DECLINED;
    } catch (...) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

int check_client_access(request_rec* r)
{
    try {
        if (!requires_certificate(r) || is_refusal_error_document(r))
            return DECLINED;
        conn_rec* c = r->connection->master ? r->connection->master : r->connection;
        ConnState* st = conn_state(c);
        if (st && st->phase != Phase::open)
            st = nullptr;
        if (verified(st))
            return DECLINED;
        // TLS 1.3 clients that offered post-handshake authentication are
        // asked now; TLS 1.2 is never renegotiated.
        if (st && st->tls.can_reauthenticate() && st->tls.client_certificate().status == ClientCertStatus::none) {
            if (r->connection->master) {
                // HTTP/2 forbids it (RFC 7540, 9.2.1): mod_http2 turns this
                // note into HTTP_1_1_REQUIRED, and the client retries over
                // HTTP/1.1.
                apr_table_setn(r->notes, "ssl-renegotiate-forbidden", "verify-client");
            } else {
                st->transport.set_block(APR_BLOCK_READ);
                int rc = st->tls.reauthenticate();
                st->transport.pass_output(true);
                if (rc < 0)
                    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                                  "mod_gnutls: post-handshake authentication failed: %s",
                                  st->tls.describe_failure(rc).c_str());
                if (verified(st))
                    return DECLINED;
            }
        }
        return refuse(r, st);
    } catch (...) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

int pre_connection(conn_rec* c, void*)
{
    if (c->outgoing)
        return start_backend_tls(c);
    if (c->master)
        return DECLINED; // an HTTP/2 stream: its main connection carries the TLS
    void* disabled = nullptr;
    if (apr_pool_userdata_get(&disabled, engine_disabled_key, c->pool) == APR_SUCCESS && disabled)
        return DECLINED; // ssl_engine_disable()
    const ServerConfig* sc = server_config(c->base_server);
    if (!sc->tls)
        return DECLINED;
    try {
        attach_tls(c, pool_owned(c->pool, new ConnState(c, *sc->tls)));
    } catch (const std::exception& e) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, "mod_gnutls: " MGSLOGNO(01303) "cannot set up TLS for this connection: %s",
                      e.what());
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

} // namespace mgs::httpd

#include "httpd/backend_tls.h"
#include "httpd/errors.h"

#include "httpd/connection.h"
#include "src/key_binding.h"
#include "src/vhost_identity.h"

#include <apr_strings.h>

#include <algorithm>

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

namespace {

// Set by ssl_bind_outgoing on mod_proxy's back-end connections that are
// ours; kept as pool userdata so conn_config only ever holds a ConnState.
constexpr const char* proxy_binding_key = "mod_gnutls:proxy-binding";

std::string joined(const std::vector<std::string>& v)
{
    std::string out;
    for (const auto& s : v)
        out += (out.empty() ? "" : ", ") + s;
    return out;
}

} // namespace

int bind_outgoing(conn_rec* c, ap_conf_vector_t*, int enable_ssl)
{
    const ServerConfig* sc = server_config(c->base_server);
    if (!enable_ssl || !sc->proxy)
        return DECLINED;
    apr_pool_userdata_setn(sc->proxy.get(), proxy_binding_key, nullptr, c->pool);
    return OK;
}

int start_backend_tls(conn_rec* c)
{
    void* data = nullptr;
    apr_pool_userdata_get(&data, proxy_binding_key, c->pool);
    auto* proxy = static_cast<const ProxyTls*>(data);
    if (!proxy || conn_state(c))
        return DECLINED;
    try {
        attach_tls(c, pool_owned(c->pool, new ConnState(c, *proxy)));
    } catch (const std::exception& e) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, "mod_gnutls: " MGSLOGNO(01401) "cannot set up TLS towards the back end: %s",
                      e.what());
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

std::string ConnState::backend_label() const
{
    const char* host = apr_table_get(c->notes, "proxy-request-hostname");
    std::string label = "back end ";
    label += host ? host : (c->client_ip ? c->client_ip : "?");
    if (c->client_ip) {
        label += " (";
        label += c->client_ip;
        if (c->client_addr)
            label += ":" + std::to_string(c->client_addr->port);
        label += ")";
    }
    return label;
}

void ConnState::prepare_backend()
{
    const char* host = apr_table_get(c->notes, "proxy-request-hostname");
    if (host)
        tls.expect_server_name(host);
    if (session_store) {
        // One session per back end address and name (the name is the SNI
        // and the name its certificate was checked against); the store adds
        // the proxy settings.
        // A digest: fixed length for memcached's and redis's key limits,
        // spread over shmcb's subcaches, and unambiguous for IPv6.
        backend_session_id = IdentityDigest()
                                 .add("address", c->client_ip ? c->client_ip : "")
                                 .add("port", std::to_string(c->client_addr ? c->client_addr->port : 0))
                                 .add("name", host ? host : "")
                                 .hex()
                                 .substr(0, 32);
        auto id = std::span(reinterpret_cast<const std::uint8_t*>(backend_session_id.data()),
                            backend_session_id.size());
        if (auto data = session_store->retrieve(id))
            tls.offer_session(*data);
    }
    // mod_proxy_http2 asks for "h2"; mod_proxy_http for nothing (HTTP/1.1).
    if (const char* protos = apr_table_get(c->notes, "proxy-request-alpn-protos")) {
        char* list = apr_pstrdup(c->pool, protos);
        char* state = nullptr;
        for (char* p = apr_strtok(list, ", ", &state); p; p = apr_strtok(nullptr, ", ", &state))
            backend_protocols.emplace_back(p);
        tls.offer_alpn(backend_protocols);
    }
}

apr_status_t ConnState::finish_backend_handshake()
{
    if (!backend_protocols.empty()) {
        std::string chosen = tls.alpn_protocol();
        if (std::find(backend_protocols.begin(), backend_protocols.end(), chosen) == backend_protocols.end()) {
            ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c,
                          "mod_gnutls: " MGSLOGNO(01402) "%s selected none of the protocols mod_proxy asked for (%s)%s%s",
                          backend_label().c_str(), joined(backend_protocols).c_str(),
                          chosen.empty() ? ": it answered without ALPN" : ": it chose ", chosen.c_str());
            gnutls_alert_send(tls.session(), GNUTLS_AL_FATAL, GNUTLS_A_NO_APPLICATION_PROTOCOL);
            transport.pass_output(true);
            phase = Phase::failed;
            c->keepalive = AP_CONN_CLOSE;
            c->aborted = 1;
            return APR_ECONNABORTED;
        }
    }
    log_opened();
    if (gnutls_session_is_resumed(tls.session())) {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, "mod_gnutls: the TLS session with the %s was resumed",
                      backend_label().c_str());
        // Not stored again: a session lives GnuTLSCacheTimeout from the
        // full handshake that verified the back end's certificate.
        backend_session_saved = true;
    } else {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, "mod_gnutls: full TLS handshake with the %s",
                      backend_label().c_str());
        save_backend_session();
    }
    return transport.pass_output(true);
}

void ConnState::save_backend_session()
{
    if (!session_store || backend_session_saved)
        return;
    if (auto data = tls.resumable_session()) {
        backend_session_saved = true;
        session_store->store(std::span(reinterpret_cast<const std::uint8_t*>(backend_session_id.data()),
                                       backend_session_id.size()),
                             *data);
    }
}

void ConnState::report_backend_failure(int rc, apr_status_t why)
{
    // error, not info: the client only sees mod_proxy's 502 page, so this
    // line is where an administrator learns what is wrong with the back end.
    std::string reason = APR_STATUS_IS_TIMEUP(why) ? "no answer within the proxy timeout"
                         : why == APR_EOF           ? "the back end closed the connection"
                                                    : tls.describe_failure(rc);
    // The proxy's own key (GnuTLSProxyKeyFile in a token or TPM) failing.
    if (std::string why_sign = take_last_sign_error(); !why_sign.empty())
        reason += "; the proxy's client key cannot sign: " + why_sign;
    int alert = rc == GNUTLS_E_FATAL_ALERT_RECEIVED ? gnutls_alert_get(tls.session()) : -1;
    if (rc == GNUTLS_E_NO_CIPHER_SUITES || rc == GNUTLS_E_UNSUPPORTED_VERSION_PACKET ||
        alert == GNUTLS_A_HANDSHAKE_FAILURE || alert == GNUTLS_A_PROTOCOL_VERSION ||
        alert == GNUTLS_A_INSUFFICIENT_SECURITY)
        reason += " (no protocol version, cipher suite or group in common with GnuTLSProxyPriorities, or the "
                  "back end wants a client certificate: GnuTLSProxyCertificateFile)";
    ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, "mod_gnutls: " MGSLOGNO(01403) "TLS handshake with the %s failed: %s",
                  backend_label().c_str(), reason.c_str());
}

} // namespace mgs::httpd

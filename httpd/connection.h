// The state of one client connection served over TLS, and the hook that
// puts the TLS filters on connections to TLS-enabled servers.
#pragma once

#include "httpd/brigade_transport.h"
#include "httpd/plain_buffer.h"
#include "httpd/server_config.h"
#include "httpd/session_cache.h"

#include <optional>
#include <string>
#include <vector>

namespace mgs::httpd {

enum class Phase {
    handshake,  // nothing decided yet
    open,       // handshake done, application data flows
    plain_http, // the client spoke HTTP: Apache answers a stand-in request with 400, in the clear
    failed,     // handshake or record layer failed: the connection is dead
    closed,     // close_notify sent at the end of the connection
};

struct ConnState {
    ConnState(conn_rec* conn, const VhostTls& tls);
    // A back-end connection of mod_proxy.
    ConnState(conn_rec* conn, const ProxyTls& proxy);

    conn_rec* c;
    server_rec* tls_server; // the server whose certificate was sent (SNI)
    BrigadeTransport transport;
    TlsConnection tls;
    std::optional<ConnSessionStore> session_store; // when GnuTLSCache is set
    Phase phase = Phase::handshake;
    // Back-end connections: what mod_proxy's connection notes asked for.
    bool backend_prepared = false;
    std::vector<std::string> backend_protocols; // proxy-request-alpn-protos
    std::string backend_session_id;              // GnuTLSCache key of this back end's session
    bool backend_session_saved = false;

    // Plaintext decrypted but not yet handed up (speculative reads, lines).
    PlainBuffer plain;

    // Drives the handshake; APR_SUCCESS when open, APR_EAGAIN for a
    // non-blocking caller, an error when the connection is finished.
    apr_status_t ensure_handshake(apr_read_type_e block);

    // "back end NAME (ADDRESS:PORT)", for log lines.
    std::string backend_label() const;
    // Back ends: keeps the session of a full handshake for the next
    // connection to the same back end once it can be resumed (TLS 1.3: once
    // the ticket came).
    void save_backend_session();
    // At debug: "TLS connection opened." and "TLS session resumed.".
    void log_opened() const;

private:
    HelloDecision on_client_hello(const ClientHello& hello);
    // Back ends (httpd/backend_tls.cpp): SNI, expected name and ALPN from
    // mod_proxy's notes; after the handshake, the protocol check.
    void prepare_backend();
    apr_status_t finish_backend_handshake();
    void report_backend_failure(int rc, apr_status_t why);
    void report_signer_failure(const std::string& why);
    void report_signer_recovery();
    // After the handshake: hand the connection to the ALPN-chosen protocol.
    apr_status_t switch_protocol();
};

ConnState* conn_state(const conn_rec* c);
// Makes `st` the connection's TLS state and puts the TLS filters on it.
void attach_tls(conn_rec* c, ConnState* st);
int pre_connection(conn_rec* c, void* csd);
// Pool userdata key marking a connection on which TLS was switched off.
inline constexpr const char* engine_disabled_key = "mod_gnutls:engine-disabled";
int process_connection(conn_rec* c);
// post_read_request, first: the stand-in request of a client that spoke
// plain HTTP to the TLS port gets Apache's 400 with mod_ssl's reason.
int reject_plain_http(request_rec* r);
// post_read_request: 421 Misdirected Request when Host names a virtual host
// whose identity (certificate, key, priorities, client authentication, SRP)
// differs from that of the virtual host the handshake chose; 403 when the
// serving virtual host has GnuTLSClientVerify require and the connection
// has no verified client certificate.
int check_request_vhost(request_rec* r);
// Access checks: GnuTLSClientVerify require of the directory (or the
// virtual host) for every request, with TLS 1.3 post-handshake
// authentication where the client offered it: 403 without a verified
// client certificate.
int check_client_access(request_rec* r);

extern ap_filter_rec_t* input_filter_handle;
extern ap_filter_rec_t* output_filter_handle;

} // namespace mgs::httpd

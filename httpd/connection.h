// The state of one client connection served over TLS, and the hook that
// puts the TLS filters on connections to TLS-enabled servers.
#pragma once

#include "httpd/brigade_transport.h"
#include "httpd/plain_buffer.h"
#include "httpd/server_config.h"
#include "httpd/session_cache.h"

#include <optional>
#include <vector>

namespace mgs::httpd {

enum class Phase {
    handshake,  // nothing decided yet
    open,       // handshake done, application data flows
    plain_http, // the client spoke HTTP: answered with a plaintext 400
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
    bool client_name_set = false; // back-end connections: name read from mod_proxy's notes

    // Plaintext decrypted but not yet handed up (speculative reads, lines).
    PlainBuffer plain;

    // Drives the handshake; APR_SUCCESS when open, APR_EAGAIN for a
    // non-blocking caller, an error when the connection is finished.
    apr_status_t ensure_handshake(apr_read_type_e block);

private:
    HelloDecision on_client_hello(const ClientHello& hello);
    void report_signer_failure(const std::string& why);
    void report_signer_recovery();
    // After the handshake: hand the connection to the ALPN-chosen protocol.
    apr_status_t switch_protocol();
};

ConnState* conn_state(const conn_rec* c);
int pre_connection(conn_rec* c, void* csd);
// mod_proxy asks for TLS on a back-end connection (GnuTLSProxyEngine on).
int bind_outgoing(conn_rec* c, ap_conf_vector_t* dir_conf, int enable_ssl);
// Pool userdata key marking a connection on which TLS was switched off.
inline constexpr const char* engine_disabled_key = "mod_gnutls:engine-disabled";
int process_connection(conn_rec* c);
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

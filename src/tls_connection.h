// One server-side TLS session over an abstract byte transport. The Apache
// glue supplies the transport (bucket brigades); tests supply sockets.
#pragma once

#include "src/client_auth.h"
#include "src/client_hello.h"
#include "src/server_credentials.h"
#include "src/session_cache.h"
#include "src/srp_credentials.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <sys/types.h>

namespace mgs {

class Transport {
public:
    virtual ~Transport() = default;
    // As recv(2)/send(2): byte count, 0 at end of stream, or -1 with errno set
    // (EAGAIN when a non-blocking read has nothing yet).
    virtual ssize_t pull(std::span<std::uint8_t> buf) noexcept = 0;
    virtual ssize_t push(std::span<const std::uint8_t> buf) noexcept = 0;
    // >0 when bytes can be read, 0 when none arrived within `ms`.
    virtual int wait_readable(unsigned ms) noexcept = 0;
};

// What a session uses: priorities and credentials of one virtual host.
struct TlsSettings {
    gnutls_priority_t priority = nullptr;
    const ServerCredentials* credentials = nullptr; // X.509 (may be absent with SRP)
    const SrpCredentials* srp = nullptr;
    const TicketKey* ticket_key = nullptr; // session tickets on when set
    ClientAuthPolicy client_auth;
};

// What the server decides when a ClientHello arrives, before GnuTLS
// processes it: the virtual host's settings (nullptr keeps the current
// ones) and the application protocol to accept (empty: no ALPN).
struct HelloDecision {
    const TlsSettings* settings = nullptr;
    std::string alpn;
};
using HelloHandler = std::function<HelloDecision(const ClientHello&)>;

class TlsConnection {
public:
    TlsConnection(Transport& transport, const TlsSettings& initial, HelloHandler on_hello = {});

    // The client side, towards a back end: verifies the server's certificate
    // against the credentials' CAs and `server_name` (also sent as SNI).
    struct ClientSide {
        gnutls_priority_t priority;
        gnutls_certificate_credentials_t credentials;
    };
    TlsConnection(Transport& transport, const ClientSide& client);
    // Client side, before the handshake: the back end's name, sent as SNI
    // (unless it is an address) and required in its certificate.
    void expect_server_name(const std::string& name);
    // Client side, before the handshake: the protocols to offer by ALPN.
    void offer_alpn(const std::vector<std::string>& protocols);
    // Client side: offers a session kept from an earlier connection (bad
    // data is ignored: the handshake is then a full one).
    void offer_session(std::span<const std::uint8_t> data);
    // Client side, established: the session to keep for resumption, once
    // there is one (TLS 1.3: after the server's ticket has been read).
    std::optional<Bytes> resumable_session() const;
    bool is_client() const { return settings_ == nullptr; }
    TlsConnection(const TlsConnection&) = delete;
    TlsConnection& operator=(const TlsConnection&) = delete;

    gnutls_session_t session() const { return session_.get(); }
    // Server side only.
    const TlsSettings& settings() const { return *settings_; }

    // GnuTLS return codes throughout: 0 / byte counts, or GNUTLS_E_*.
    int handshake();
    bool established() const { return established_; }
    ssize_t recv(std::span<std::uint8_t> buf);
    ssize_t send(std::span<const std::uint8_t> buf);
    int close_notify();
    std::size_t pending() const { return gnutls_record_check_pending(session_.get()); }

    // Why a handshake failed, for the log: GnuTLS's text, plus the alert.
    std::string describe_failure(int code) const;
    std::string server_name() const;
    // What came of the client's certificate (handshake authentication).
    const ClientCertResult& client_certificate() const { return client_cert_; }
    // The client's end-entity certificate, or nullptr.
    X509Crt peer_certificate() const;
    // TLS 1.3 post-handshake authentication: whether the client offered it,
    // and asking for (and verifying) its certificate now. GnuTLS codes.
    bool can_reauthenticate() const;
    int reauthenticate();
    // Installed on credentials: checks client certificates during handshakes.
    static int verify_client_cb(gnutls_session_t session);

    // The negotiated ALPN protocol, empty if none.
    std::string alpn_protocol() const;

private:
    // Our Transport under the session, and the session's way back to us.
    void attach_transport();
    static ssize_t pull_cb(gnutls_transport_ptr_t, void* buf, size_t len);
    static ssize_t push_cb(gnutls_transport_ptr_t, const void* buf, size_t len);
    static int pull_timeout_cb(gnutls_transport_ptr_t, unsigned ms);
    static int client_hello_hook(gnutls_session_t session, unsigned htype, unsigned when, unsigned incoming,
                                 const gnutls_datum_t* msg);

    Transport& transport_;
    const TlsSettings* settings_;
    HelloHandler on_hello_;
    Session session_;
    bool established_ = false;
    bool hello_seen_ = false; // server side: the virtual host is settled
    ClientCertResult client_cert_;
    std::string verify_name_;
};

} // namespace mgs

#include "src/tls_connection.h"

#include "keystore/error.h"

namespace mgs {

namespace {

Session new_session(unsigned flags)
{
    gnutls_session_t s = nullptr;
    if (int rc = gnutls_init(&s, flags | GNUTLS_NO_SIGNAL); rc < 0)
        throw_gnutls("gnutls_init", rc);
    return Session(s);
}

// POST_HANDSHAKE_AUTH: a directory may ask a TLS 1.3 client for its
// certificate after the handshake. NO_AUTO_SEND_TICKET: see handshake().
Session new_server_session()
{
    return new_session(GNUTLS_SERVER | GNUTLS_POST_HANDSHAKE_AUTH | GNUTLS_NO_AUTO_SEND_TICKET);
}

// As many TLS 1.3 tickets as GnuTLS (and OpenSSL) send by default.
constexpr unsigned tls13_tickets = 2;

void apply(gnutls_session_t s, const TlsSettings& settings)
{
    if (int rc = gnutls_priority_set(s, settings.priority); rc < 0)
        throw_gnutls("gnutls_priority_set", rc);
    // Nothing of the virtual host chosen before SNI may stay: an SRP-only
    // host must not present (or verify clients with) another's certificates.
    gnutls_credentials_clear(s);
    if (settings.credentials)
        if (int rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, settings.credentials->get()); rc < 0)
            throw_gnutls("gnutls_credentials_set", rc);
    if (settings.srp)
        if (int rc = gnutls_credentials_set(s, GNUTLS_CRD_SRP, settings.srp->get()); rc < 0)
            throw_gnutls("gnutls_credentials_set (SRP)", rc);
    switch (settings.client_auth.mode) {
    case ClientVerify::ignore: gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE); break;
    case ClientVerify::request: gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST); break;
    case ClientVerify::require: gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE); break;
    }
}

// Tickets are switched on only once the ClientHello has chosen the virtual
// host: GnuTLS cannot switch them off again, and a ticket key set for the
// first virtual host would let its tickets resume on the chosen one.
void enable_tickets(gnutls_session_t s, const TlsSettings& settings)
{
    if (settings.ticket_key)
        if (int rc = gnutls_session_ticket_enable_server(s, settings.ticket_key->get()); rc < 0)
            throw_gnutls("gnutls_session_ticket_enable_server", rc);
}

} // namespace

TlsConnection::TlsConnection(Transport& transport, const TlsSettings& initial, HelloHandler on_hello)
    : transport_(transport), settings_(&initial), on_hello_(std::move(on_hello)), session_(new_server_session())
{
    gnutls_session_t s = session_.get();
    apply(s, initial);
    attach_transport();
    // Before GnuTLS parses the ClientHello: ALPN is decided while it parses,
    // so the protocol to accept must be known by then.
    gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE, client_hello_hook);
}

TlsConnection::TlsConnection(Transport& transport, const ClientSide& client)
    : transport_(transport), settings_(nullptr), session_(new_session(GNUTLS_CLIENT))
{
    gnutls_session_t s = session_.get();
    if (int rc = gnutls_priority_set(s, client.priority); rc < 0)
        throw_gnutls("gnutls_priority_set", rc);
    if (int rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, client.credentials); rc < 0)
        throw_gnutls("gnutls_credentials_set", rc);
    gnutls_session_set_verify_cert(s, nullptr, 0); // the chain at least; the name once known
    attach_transport();
}

void TlsConnection::attach_transport()
{
    gnutls_session_t s = session_.get();
    gnutls_transport_set_ptr(s, this);
    gnutls_transport_set_pull_function(s, pull_cb);
    gnutls_transport_set_push_function(s, push_cb);
    gnutls_transport_set_pull_timeout_function(s, pull_timeout_cb);
    // Apache's Timeout bounds every read; GnuTLS's own handshake timer would
    // only race with it.
    gnutls_handshake_set_timeout(s, 0);
    gnutls_session_set_ptr(s, this);
}

void TlsConnection::expect_server_name(const std::string& name)
{
    verify_name_ = name; // GnuTLS keeps the pointer, not a copy
    // SNI is for names only, but the certificate check works for addresses too.
    if (verify_name_.find_first_not_of("0123456789.:[]") != std::string::npos)
        gnutls_server_name_set(session_.get(), GNUTLS_NAME_DNS, verify_name_.data(), verify_name_.size());
    gnutls_session_set_verify_cert(session_.get(), verify_name_.c_str(), 0);
}

void TlsConnection::offer_alpn(const std::vector<std::string>& protocols)
{
    std::vector<gnutls_datum_t> list;
    for (const auto& p : protocols)
        list.push_back({reinterpret_cast<unsigned char*>(const_cast<char*>(p.data())),
                        static_cast<unsigned>(p.size())});
    if (list.empty())
        return;
    // GnuTLS copies the names.
    if (int rc = gnutls_alpn_set_protocols(session_.get(), list.data(), static_cast<unsigned>(list.size()), 0);
        rc < 0)
        throw_gnutls("gnutls_alpn_set_protocols", rc);
}

void TlsConnection::offer_session(std::span<const std::uint8_t> data)
{
    gnutls_session_set_data(session_.get(), data.data(), data.size());
}

std::optional<Bytes> TlsConnection::resumable_session() const
{
    if (!established_)
        return std::nullopt;
    if (gnutls_protocol_get_version(session_.get()) == GNUTLS_TLS1_3 &&
        !(gnutls_session_get_flags(session_.get()) & GNUTLS_SFLAGS_SESSION_TICKET))
        return std::nullopt;
    GnutlsDatum d;
    if (gnutls_session_get_data2(session_.get(), &d.d) < 0)
        return std::nullopt;
    return d.bytes();
}

int TlsConnection::handshake()
{
    int rc = gnutls_handshake(session_.get());
    if (rc == 0) {
        established_ = true;
        // GnuTLS runs no certificate check when a session resumes, but keeps
        // the client's certificate in the session: check it again, against
        // this virtual host's CAs, so the resumed connection has the state
        // of the original handshake.
        if (settings_ && gnutls_session_is_resumed(session_.get()))
            client_cert_ = verify_client_certificate(session_.get(), settings_->client_auth.purpose_oid);
        // GnuTLS would send TLS 1.3 tickets with its first flight, leaving
        // nothing to send when the client's Finished arrives: the delayed
        // ACK then holds a Nagle-enabled client's request back for 40 ms.
        // Sent now, as OpenSSL does, they also acknowledge the Finished.
        // A ticket that cannot be sent only costs that client a resumption.
        if (settings_ && settings_->ticket_key && gnutls_protocol_get_version(session_.get()) == GNUTLS_TLS1_3)
            gnutls_session_ticket_send(session_.get(), tls13_tickets, 0);
    }
    return rc;
}

ssize_t TlsConnection::recv(std::span<std::uint8_t> buf)
{
    return gnutls_record_recv(session_.get(), buf.data(), buf.size());
}

ssize_t TlsConnection::send(std::span<const std::uint8_t> buf)
{
    return gnutls_record_send(session_.get(), buf.data(), buf.size());
}

int TlsConnection::close_notify() { return gnutls_bye(session_.get(), GNUTLS_SHUT_WR); }

std::string TlsConnection::describe_failure(int code) const
{
    std::string text = gnutls_error_text(code);
    if (code == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)
        text += ": " + verification_status_text(gnutls_session_get_verify_cert_status(session_.get()));
    if (code == GNUTLS_E_FATAL_ALERT_RECEIVED || code == GNUTLS_E_WARNING_ALERT_RECEIVED) {
        if (const char* alert = gnutls_alert_get_name(gnutls_alert_get(session_.get())))
            text += std::string(is_client() ? ": the server sent alert '" : ": the client sent alert '") + alert + "'";
    }
    return text;
}

std::string TlsConnection::server_name() const
{
    char name[256];
    size_t len = sizeof name;
    unsigned type = 0;
    if (gnutls_server_name_get(session_.get(), name, &len, &type, 0) == 0 && type == GNUTLS_NAME_DNS)
        return std::string(name, len);
    return {};
}

int TlsConnection::verify_client_cb(gnutls_session_t session)
{
    auto* self = static_cast<TlsConnection*>(gnutls_session_get_ptr(session));
    if (!self || self->is_client())
        return 0;
    try {
        const ClientAuthPolicy& policy = self->settings_->client_auth;
        self->client_cert_ = verify_client_certificate(session, policy.purpose_oid);
        // As mod_gnutls: `require` refuses a handshake without a certificate;
        // one that does not verify completes the handshake and every request
        // on it gets 403 (so an ErrorDocument can tell the person why).
        if (policy.mode == ClientVerify::require && self->client_cert_.status == ClientCertStatus::none)
            return GNUTLS_E_NO_CERTIFICATE_FOUND;
        return 0;
    } catch (...) {
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
}

bool TlsConnection::can_reauthenticate() const
{
    return established_ && gnutls_protocol_get_version(session_.get()) == GNUTLS_TLS1_3 &&
           (gnutls_session_get_flags(session_.get()) & GNUTLS_SFLAGS_POST_HANDSHAKE_AUTH);
}

int TlsConnection::reauthenticate()
{
    gnutls_certificate_server_set_request(session_.get(), GNUTLS_CERT_REQUEST);
    int rc;
    do {
        rc = gnutls_reauth(session_.get(), 0);
    } while (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED);
    return rc;
}

X509Crt TlsConnection::peer_certificate() const
{
    unsigned count = 0;
    const gnutls_datum_t* certs = gnutls_certificate_get_peers(session_.get(), &count);
    if (!certs || count == 0)
        return nullptr;
    X509Crt crt = new_x509_crt();
    if (gnutls_x509_crt_import(crt.get(), &certs[0], GNUTLS_X509_FMT_DER) < 0)
        return nullptr;
    return crt;
}

std::string TlsConnection::alpn_protocol() const
{
    gnutls_datum_t p{};
    if (gnutls_alpn_get_selected_protocol(session_.get(), &p) < 0)
        return {};
    return std::string(reinterpret_cast<const char*>(p.data), p.size);
}

ssize_t TlsConnection::pull_cb(gnutls_transport_ptr_t p, void* buf, size_t len)
{
    auto* self = static_cast<TlsConnection*>(p);
    ssize_t n = self->transport_.pull({static_cast<std::uint8_t*>(buf), len});
    if (n < 0)
        gnutls_transport_set_errno(self->session_.get(), errno);
    return n;
}

ssize_t TlsConnection::push_cb(gnutls_transport_ptr_t p, const void* buf, size_t len)
{
    auto* self = static_cast<TlsConnection*>(p);
    ssize_t n = self->transport_.push({static_cast<const std::uint8_t*>(buf), len});
    if (n < 0)
        gnutls_transport_set_errno(self->session_.get(), errno);
    return n;
}

int TlsConnection::pull_timeout_cb(gnutls_transport_ptr_t p, unsigned ms)
{
    return static_cast<TlsConnection*>(p)->transport_.wait_readable(ms);
}

int TlsConnection::client_hello_hook(gnutls_session_t session, unsigned htype, unsigned when, unsigned incoming,
                                     const gnutls_datum_t* msg)
{
    if (htype != GNUTLS_HANDSHAKE_CLIENT_HELLO || when != GNUTLS_HOOK_PRE || !incoming || !msg)
        return 0;
    auto* self = static_cast<TlsConnection*>(gnutls_session_get_ptr(session));
    try {
        if (self->on_hello_) {
            HelloDecision d = self->on_hello_(parse_client_hello(*msg));
            if (d.settings && d.settings != self->settings_) {
                // A second ClientHello (after HelloRetryRequest) must not
                // change the virtual host: its tickets are already set.
                if (self->hello_seen_)
                    return GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER;
                apply(session, *d.settings);
                self->settings_ = d.settings;
            }
            if (!d.alpn.empty()) {
                gnutls_datum_t proto{reinterpret_cast<unsigned char*>(d.alpn.data()),
                                     static_cast<unsigned>(d.alpn.size())};
                if (int rc = gnutls_alpn_set_protocols(session, &proto, 1, 0); rc < 0)
                    return rc;
            }
        }
        if (!self->hello_seen_) {
            self->hello_seen_ = true;
            enable_tickets(session, *self->settings_);
        }
        return 0;
    } catch (...) {
        return GNUTLS_E_INTERNAL_ERROR;
    }
}

} // namespace mgs

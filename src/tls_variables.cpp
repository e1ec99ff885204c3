#include "src/tls_variables.h"

#include "keystore/hex.h"

#include <ctime>

namespace mgs {

namespace {

std::string cipher_name(gnutls_session_t s)
{
    if (const char* n = gnutls_ciphersuite_get(s))
        return n;
    const char* n = gnutls_cipher_suite_get_name(gnutls_kx_get(s), gnutls_cipher_get(s), gnutls_mac_get(s));
    return n ? n : "";
}

using Value = std::optional<std::string>;

Value text(std::string v) { return v; }
Value unless_empty(const std::string& v) { return v.empty() ? std::nullopt : Value(v); }

// What a variable is computed from.
struct Context {
    const TlsConnection& conn;
    const VariableOptions& o;
    const CertificateFields* peer; // the client's certificate, read once by the caller (or null)
    gnutls_session_t s() const { return conn.session(); }
};

bool srp_kx(gnutls_kx_algorithm_t kx)
{
    return kx == GNUTLS_KX_SRP || kx == GNUTLS_KX_SRP_RSA || kx == GNUTLS_KX_SRP_DSS;
}

bool dh_kx(gnutls_session_t s)
{
    auto kx = gnutls_kx_get(s);
    auto group = gnutls_group_get(s);
    return kx == GNUTLS_KX_DHE_RSA || kx == GNUTLS_KX_DHE_DSS || kx == GNUTLS_KX_DHE_PSK ||
           (gnutls_protocol_get_version(s) == GNUTLS_TLS1_3 && group >= GNUTLS_GROUP_FFDHE2048 &&
            group <= GNUTLS_GROUP_FFDHE8192);
}

// The connection's variables, each declared once: lookup and export both
// read this table (as mod_http2's H2_VARS).
struct SessionVariable {
    std::string_view name;
    bool needs_handshake;
    Value (*get)(const Context&);
};

constexpr SessionVariable session_variables[] = {
    {"HTTPS", false, [](const Context&) { return text("on"); }},
    {"SSL_VERSION_LIBRARY", false,
     [](const Context&) { return text(std::string("GnuTLS/") + gnutls_check_version(nullptr)); }},
    {"SSL_VERSION_INTERFACE", false, [](const Context& c) { return text(c.o.interface_version); }},
    {"SSL_PROTOCOL", true,
     [](const Context& c) {
         const char* v = gnutls_protocol_get_name(gnutls_protocol_get_version(c.s()));
         return text(v ? v : "UNKNOWN");
     }},
    {"SSL_CIPHER", true, [](const Context& c) { return text(cipher_name(c.s())); }},
    {"SSL_COMPRESS_METHOD", true, [](const Context&) { return text("NULL"); }},
    {"SSL_CIPHER_USEKEYSIZE", true,
     [](const Context& c) { return text(std::to_string(8 * gnutls_cipher_get_key_size(gnutls_cipher_get(c.s())))); }},
    {"SSL_CIPHER_ALGKEYSIZE", true,
     [](const Context& c) { return text(std::to_string(8 * gnutls_cipher_get_key_size(gnutls_cipher_get(c.s())))); }},
    {"SSL_CIPHER_EXPORT", true, [](const Context&) { return text("False"); }},
    {"SSL_DH_PRIME_BITS", true,
     [](const Context& c) {
         return dh_kx(c.s()) ? text(std::to_string(gnutls_dh_get_prime_bits(c.s()))) : std::nullopt;
     }},
    {"SSL_SESSION_ID", true,
     [](const Context& c) -> Value {
         unsigned char id[GNUTLS_MAX_SESSION_ID_SIZE];
         size_t len = sizeof id;
         if (gnutls_session_get_id(c.s(), id, &len) < 0)
             return std::nullopt;
         return upper_hex({id, len});
     }},
    {"SSL_SRP_USER", true,
     [](const Context& c) -> Value {
         const char* user = srp_kx(gnutls_kx_get(c.s())) ? gnutls_srp_server_get_username(c.s()) : nullptr;
         return user ? Value(user) : std::nullopt;
     }},
    {"SSL_TLS_SNI", true, [](const Context& c) { return unless_empty(c.conn.server_name()); }},
    {"SSL_CLIENT_VERIFY", true,
     [](const Context& c) { return text(client_verify_name(c.conn.client_certificate().status)); }},
};

// The fields of a certificate, for SSL_SERVER_* and SSL_CLIENT_*.
struct CertificateVariable {
    std::string_view suffix; // after SSL_SERVER_ / SSL_CLIENT_
    bool client_only;
    Value (*get)(const CertificateFields&, const VariableOptions&);
};

constexpr CertificateVariable certificate_variables[] = {
    {"S_DN", false, [](const CertificateFields& f, const VariableOptions&) { return text(f.subject_dn); }},
    {"I_DN", false, [](const CertificateFields& f, const VariableOptions&) { return text(f.issuer_dn); }},
    {"M_SERIAL", false, [](const CertificateFields& f, const VariableOptions&) { return unless_empty(f.serial); }},
    {"M_VERSION", false, [](const CertificateFields& f, const VariableOptions&) { return text(f.version); }},
    {"A_SIG", false,
     [](const CertificateFields& f, const VariableOptions&) { return text(f.signature_algorithm); }},
    {"A_KEY", false, [](const CertificateFields& f, const VariableOptions&) { return text(f.key_algorithm); }},
    {"V_START", false, [](const CertificateFields& f, const VariableOptions&) { return text(f.valid_from); }},
    {"V_END", false, [](const CertificateFields& f, const VariableOptions&) { return text(f.valid_until); }},
    {"V_REMAIN", true,
     [](const CertificateFields& f, const VariableOptions&) {
         time_t left = f.expires - time(nullptr);
         return text(std::to_string(left > 0 ? left / 86400 : 0));
     }},
    {"CERT", false,
     [](const CertificateFields& f, const VariableOptions& o) -> Value {
         if (o.export_cert_limit == 0)
             return std::nullopt;
         return f.pem.size() > o.export_cert_limit ? std::string("GNUTLS_CERTIFICATE_SIZE_LIMIT_EXCEEDED") : f.pem;
     }},
    {"CERT_TYPE", false,
     [](const CertificateFields&, const VariableOptions& o) {
         return o.export_cert_limit > 0 ? text("X.509") : std::nullopt;
     }},
};

// S_AN0, S_AN1, ...: the subjectAltNames.
Value alt_name(const CertificateFields& f, std::string_view field)
{
    if (!field.starts_with("S_AN") || field.size() <= 4)
        return std::nullopt;
    std::size_t i = 0;
    for (char c : field.substr(4)) {
        if (c < '0' || c > '9')
            return std::nullopt;
        i = i * 10 + static_cast<std::size_t>(c - '0');
    }
    return i < f.alt_names.size() ? Value(f.alt_names[i]) : std::nullopt;
}

Value certificate_variable(const CertificateFields& f, std::string_view field, bool client, const VariableOptions& o)
{
    for (const auto& v : certificate_variables)
        if (v.suffix == field)
            return v.client_only && !client ? std::nullopt : v.get(f, o);
    return alt_name(f, field);
}

const CertificateFields* server_fields(const TlsConnection& conn)
{
    return conn.established() && !conn.is_client() && conn.settings().credentials
               ? &conn.settings().credentials->leaf_fields()
               : nullptr;
}

Value lookup(const Context& c, std::string_view name)
{
    for (const auto& v : session_variables)
        if (v.name == name)
            return v.needs_handshake && !c.conn.established() ? std::nullopt : v.get(c);
    if (name.starts_with("SSL_SERVER_"))
        if (const CertificateFields* f = server_fields(c.conn))
            return certificate_variable(*f, name.substr(11), false, c.o);
    if (name.starts_with("SSL_CLIENT_") && c.peer)
        return certificate_variable(*c.peer, name.substr(11), true, c.o);
    return std::nullopt;
}

std::optional<CertificateFields> peer_fields(const TlsConnection& conn, const VariableOptions& o)
{
    if (!conn.established())
        return std::nullopt;
    X509Crt peer = conn.peer_certificate();
    if (!peer)
        return std::nullopt;
    return read_certificate_fields(peer.get(), o.export_cert_limit > 0);
}

void export_certificate(std::vector<std::pair<std::string, std::string>>& out, std::string_view prefix,
                        const CertificateFields& f, bool client, const VariableOptions& o)
{
    for (const auto& v : certificate_variables)
        if (!v.client_only || client)
            if (auto value = v.get(f, o))
                out.emplace_back(std::string(prefix) + std::string(v.suffix), std::move(*value));
    for (std::size_t i = 0; i < f.alt_names.size(); ++i)
        out.emplace_back(std::string(prefix) + "S_AN" + std::to_string(i), f.alt_names[i]);
}

} // namespace

std::optional<std::string> tls_variable(const TlsConnection& conn, std::string_view name,
                                        const VariableOptions& o)
{
    auto peer = name.starts_with("SSL_CLIENT_") ? peer_fields(conn, o) : std::nullopt;
    return lookup(Context{conn, o, peer ? &*peer : nullptr}, name);
}

std::vector<std::pair<std::string, std::string>> tls_variables(const TlsConnection& conn,
                                                               const VariableOptions& o)
{
    auto peer = peer_fields(conn, o);
    Context c{conn, o, peer ? &*peer : nullptr};
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(std::size(session_variables) + 2 * std::size(certificate_variables) + 8);
    for (const auto& v : session_variables)
        if (!v.needs_handshake || conn.established())
            if (auto value = v.get(c))
                out.emplace_back(v.name, std::move(*value));
    if (const CertificateFields* f = server_fields(conn))
        export_certificate(out, "SSL_SERVER_", *f, false, o);
    if (peer)
        export_certificate(out, "SSL_CLIENT_", *peer, true, o);
    return out;
}

} // namespace mgs

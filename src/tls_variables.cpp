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

std::optional<std::string> cert_variable(const CertificateFields& f, std::string_view field,
                                         const VariableOptions& o)
{
    if (field == "S_DN")
        return f.subject_dn;
    if (field == "I_DN")
        return f.issuer_dn;
    if (field == "M_SERIAL")
        return f.serial.empty() ? std::nullopt : std::optional<std::string>(f.serial);
    if (field == "M_VERSION")
        return f.version;
    if (field == "A_SIG")
        return f.signature_algorithm;
    if (field == "A_KEY")
        return f.key_algorithm;
    if (field == "V_START")
        return f.valid_from;
    if (field == "V_END")
        return f.valid_until;
    if (field == "CERT" && o.export_cert_limit > 0)
        return f.pem.size() > o.export_cert_limit ? std::string("GNUTLS_CERTIFICATE_SIZE_LIMIT_EXCEEDED") : f.pem;
    if (field == "CERT_TYPE" && o.export_cert_limit > 0)
        return std::string("X.509");
    if (field.starts_with("S_AN") && field.size() > 4) {
        std::size_t i = 0;
        for (char c : field.substr(4)) {
            if (c < '0' || c > '9')
                return std::nullopt;
            i = i * 10 + static_cast<std::size_t>(c - '0');
        }
        if (i < f.alt_names.size())
            return f.alt_names[i];
    }
    return std::nullopt;
}

} // namespace

namespace {

// `peer` is the client's certificate, read once by the caller (or null).
std::optional<std::string> lookup(const TlsConnection& conn, std::string_view name, const VariableOptions& o,
                                  const CertificateFields* peer)
{
    gnutls_session_t s = conn.session();
    if (name == "HTTPS")
        return std::string("on");
    if (name == "SSL_VERSION_LIBRARY")
        return std::string("GnuTLS/") + gnutls_check_version(nullptr);
    if (name == "SSL_VERSION_INTERFACE")
        return o.interface_version;
    if (!conn.established())
        return std::nullopt;
    if (name == "SSL_PROTOCOL") {
        const char* v = gnutls_protocol_get_name(gnutls_protocol_get_version(s));
        return v ? v : "UNKNOWN";
    }
    if (name == "SSL_CIPHER")
        return cipher_name(s);
    if (name == "SSL_COMPRESS_METHOD")
        return std::string("NULL");
    if (name == "SSL_CIPHER_USEKEYSIZE" || name == "SSL_CIPHER_ALGKEYSIZE")
        return std::to_string(8 * gnutls_cipher_get_key_size(gnutls_cipher_get(s)));
    if (name == "SSL_CIPHER_EXPORT")
        return std::string("False");
    if (name == "SSL_DH_PRIME_BITS") {
        auto kx = gnutls_kx_get(s);
        if (kx == GNUTLS_KX_DHE_RSA || kx == GNUTLS_KX_DHE_DSS || kx == GNUTLS_KX_DHE_PSK ||
            (gnutls_protocol_get_version(s) == GNUTLS_TLS1_3 && gnutls_group_get(s) >= GNUTLS_GROUP_FFDHE2048 &&
             gnutls_group_get(s) <= GNUTLS_GROUP_FFDHE8192))
            return std::to_string(gnutls_dh_get_prime_bits(s));
        return std::nullopt;
    }
    if (name == "SSL_SESSION_ID") {
        unsigned char id[GNUTLS_MAX_SESSION_ID_SIZE];
        size_t len = sizeof id;
        if (gnutls_session_get_id(s, id, &len) < 0)
            return std::nullopt;
        return upper_hex({id, len});
    }
    if (name == "SSL_TLS_SNI") {
        std::string sni = conn.server_name();
        return sni.empty() ? std::nullopt : std::optional<std::string>(sni);
    }
    if (name == "SSL_SRP_USER") {
        const char* user = gnutls_kx_get(s) == GNUTLS_KX_SRP || gnutls_kx_get(s) == GNUTLS_KX_SRP_RSA ||
                                   gnutls_kx_get(s) == GNUTLS_KX_SRP_DSS
                               ? gnutls_srp_server_get_username(s)
                               : nullptr;
        return user ? std::optional<std::string>(user) : std::nullopt;
    }
    if (name == "SSL_CLIENT_VERIFY")
        return std::string(client_verify_name(conn.client_certificate().status));
    if (name.starts_with("SSL_SERVER_") && !conn.is_client() && conn.settings().credentials)
        return cert_variable(conn.settings().credentials->leaf_fields(), name.substr(11), o);
    if (name.starts_with("SSL_CLIENT_")) {
        if (!peer)
            return std::nullopt;
        if (name == "SSL_CLIENT_V_REMAIN") {
            time_t left = peer->expires - time(nullptr);
            return std::to_string(left > 0 ? left / 86400 : 0);
        }
        return cert_variable(*peer, name.substr(11), o);
    }
    return std::nullopt;
}

} // namespace

namespace {

std::optional<CertificateFields> peer_fields(const TlsConnection& conn, const VariableOptions& o)
{
    if (!conn.established())
        return std::nullopt;
    X509Crt peer = conn.peer_certificate();
    if (!peer)
        return std::nullopt;
    return read_certificate_fields(peer.get(), o.export_cert_limit > 0);
}

} // namespace

std::optional<std::string> tls_variable(const TlsConnection& conn, std::string_view name,
                                        const VariableOptions& o)
{
    auto peer = name.starts_with("SSL_CLIENT_") ? peer_fields(conn, o) : std::nullopt;
    return lookup(conn, name, o, peer ? &*peer : nullptr);
}

std::vector<std::pair<std::string, std::string>> tls_variables(const TlsConnection& conn,
                                                               const VariableOptions& o)
{
    static constexpr std::string_view names[] = {
        "HTTPS", "SSL_VERSION_LIBRARY", "SSL_VERSION_INTERFACE", "SSL_PROTOCOL", "SSL_CIPHER",
        "SSL_COMPRESS_METHOD", "SSL_CIPHER_USEKEYSIZE", "SSL_CIPHER_ALGKEYSIZE", "SSL_CIPHER_EXPORT",
        "SSL_DH_PRIME_BITS", "SSL_SESSION_ID", "SSL_SRP_USER", "SSL_TLS_SNI", "SSL_CLIENT_VERIFY", "SSL_SERVER_S_DN",
        "SSL_SERVER_I_DN", "SSL_SERVER_M_SERIAL", "SSL_SERVER_M_VERSION", "SSL_SERVER_A_SIG",
        "SSL_SERVER_A_KEY", "SSL_SERVER_V_START", "SSL_SERVER_V_END", "SSL_SERVER_CERT",
        "SSL_SERVER_CERT_TYPE", "SSL_CLIENT_S_DN", "SSL_CLIENT_I_DN", "SSL_CLIENT_M_SERIAL",
        "SSL_CLIENT_M_VERSION", "SSL_CLIENT_A_SIG", "SSL_CLIENT_A_KEY", "SSL_CLIENT_V_START",
        "SSL_CLIENT_V_END", "SSL_CLIENT_V_REMAIN", "SSL_CLIENT_CERT", "SSL_CLIENT_CERT_TYPE",
    };
    auto peer = peer_fields(conn, o);
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(std::size(names) + 8);
    for (auto n : names)
        if (auto v = lookup(conn, n, o, peer ? &*peer : nullptr))
            out.emplace_back(n, std::move(*v));
    if (conn.established() && !conn.is_client() && conn.settings().credentials) {
        const auto& sans = conn.settings().credentials->leaf_fields().alt_names;
        for (std::size_t i = 0; i < sans.size(); ++i)
            out.emplace_back("SSL_SERVER_S_AN" + std::to_string(i), sans[i]);
    }
    if (peer)
        for (std::size_t i = 0; i < peer->alt_names.size(); ++i)
            out.emplace_back("SSL_CLIENT_S_AN" + std::to_string(i), peer->alt_names[i]);
    return out;
}

} // namespace mgs

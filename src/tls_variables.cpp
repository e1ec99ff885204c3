#include "src/tls_variables.h"

#include <cstdio>
#include <ctime>

namespace mgs {

namespace {

std::string hex(const unsigned char* p, std::size_t n)
{
    static const char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[p[i] >> 4];
        out += digits[p[i] & 15];
    }
    return out;
}

std::string dn_of(gnutls_x509_crt_t crt, bool issuer)
{
    gnutls_datum_t d{};
    int rc = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &d, 0) : gnutls_x509_crt_get_dn3(crt, &d, 0);
    if (rc < 0)
        return {};
    std::string s(reinterpret_cast<const char*>(d.data), d.size);
    gnutls_free(d.data);
    return s;
}

std::string cipher_name(gnutls_session_t s)
{
    if (const char* n = gnutls_ciphersuite_get(s))
        return n;
    const char* n = gnutls_cipher_suite_get_name(gnutls_kx_get(s), gnutls_cipher_get(s), gnutls_mac_get(s));
    return n ? n : "";
}

std::string pem_of(gnutls_x509_crt_t crt, std::size_t limit)
{
    gnutls_datum_t d{};
    if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d) < 0)
        return {};
    std::string s(reinterpret_cast<const char*>(d.data), d.size);
    gnutls_free(d.data);
    return s.size() > limit ? "GNUTLS_CERTIFICATE_SIZE_LIMIT_EXCEEDED" : s;
}

std::optional<std::string> cert_variable(gnutls_x509_crt_t crt, std::string_view field,
                                                const VariableOptions& o)
{
    if (field == "S_DN")
        return dn_of(crt, false);
    if (field == "I_DN")
        return dn_of(crt, true);
    if (field == "M_SERIAL") {
        unsigned char serial[64];
        size_t len = sizeof serial;
        if (gnutls_x509_crt_get_serial(crt, serial, &len) < 0)
            return std::nullopt;
        return hex(serial, len);
    }
    if (field == "M_VERSION")
        return std::to_string(gnutls_x509_crt_get_version(crt));
    if (field == "A_SIG") {
        const char* n = gnutls_sign_get_name(static_cast<gnutls_sign_algorithm_t>(
            gnutls_x509_crt_get_signature_algorithm(crt)));
        return n ? n : "UNKNOWN";
    }
    if (field == "A_KEY") {
        const char* n = gnutls_pk_algorithm_get_name(
            static_cast<gnutls_pk_algorithm_t>(gnutls_x509_crt_get_pk_algorithm(crt, nullptr)));
        return n ? n : "UNKNOWN";
    }
    if (field == "V_START")
        return certificate_time(gnutls_x509_crt_get_activation_time(crt));
    if (field == "V_END")
        return certificate_time(gnutls_x509_crt_get_expiration_time(crt));
    if (field == "CERT" && o.export_cert_limit > 0)
        return pem_of(crt, o.export_cert_limit);
    if (field == "CERT_TYPE" && o.export_cert_limit > 0)
        return std::string("X.509");
    if (field.starts_with("S_AN")) {
        auto names = subject_alt_names(crt);
        std::size_t i = 0;
        for (char c : field.substr(4)) {
            if (c < '0' || c > '9')
                return std::nullopt;
            i = i * 10 + static_cast<std::size_t>(c - '0');
        }
        if (field.size() > 4 && i < names.size())
            return names[i];
    }
    return std::nullopt;
}

} // namespace

std::string certificate_time(time_t t)
{
    struct tm tm {};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%b %e %H:%M:%S %Y GMT", &tm);
    return buf;
}

std::vector<std::string> subject_alt_names(gnutls_x509_crt_t crt)
{
    std::vector<std::string> out;
    for (unsigned i = 0;; ++i) {
        char buf[1024];
        size_t size = sizeof buf;
        int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size, nullptr);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        switch (type) {
        case GNUTLS_SAN_DNSNAME: out.push_back("DNSNAME:" + std::string(buf, size)); break;
        case GNUTLS_SAN_RFC822NAME: out.push_back("RFC822NAME:" + std::string(buf, size)); break;
        case GNUTLS_SAN_URI: out.push_back("URI:" + std::string(buf, size)); break;
        default: out.push_back("UNSUPPORTED"); break;
        }
    }
    return out;
}

namespace {

// `peer` is the client's certificate, imported once by the caller (or null).
std::optional<std::string> lookup(const TlsConnection& conn, std::string_view name, const VariableOptions& o,
                                  gnutls_x509_crt_t peer)
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
        return hex(id, len);
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
        return cert_variable(conn.settings().credentials->chain().leaf(), name.substr(11), o);
    if (name.starts_with("SSL_CLIENT_")) {
        if (!peer)
            return std::nullopt;
        if (name == "SSL_CLIENT_V_REMAIN") {
            time_t left = gnutls_x509_crt_get_expiration_time(peer) - time(nullptr);
            return std::to_string(left > 0 ? left / 86400 : 0);
        }
        return cert_variable(peer, name.substr(11), o);
    }
    return std::nullopt;
}

} // namespace

std::optional<std::string> tls_variable(const TlsConnection& conn, std::string_view name,
                                        const VariableOptions& o)
{
    X509Crt peer = name.starts_with("SSL_CLIENT_") && conn.established() ? conn.peer_certificate() : nullptr;
    return lookup(conn, name, o, peer.get());
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
    X509Crt peer = conn.established() ? conn.peer_certificate() : nullptr;
    std::vector<std::pair<std::string, std::string>> out;
    for (auto n : names)
        if (auto v = lookup(conn, n, o, peer.get()))
            out.emplace_back(n, *v);
    if (conn.established() && !conn.is_client() && conn.settings().credentials) {
        auto sans = subject_alt_names(conn.settings().credentials->chain().leaf());
        for (std::size_t i = 0; i < sans.size(); ++i)
            out.emplace_back("SSL_SERVER_S_AN" + std::to_string(i), sans[i]);
    }
    if (peer) {
        auto sans = subject_alt_names(peer.get());
        for (std::size_t i = 0; i < sans.size(); ++i)
            out.emplace_back("SSL_CLIENT_S_AN" + std::to_string(i), sans[i]);
    }
    return out;
}

} // namespace mgs

// What the SSL_SERVER_* / SSL_CLIENT_* variables say about a certificate,
// read once: a server's certificate at startup, a client's once per request.
#pragma once

#include <gnutls/x509.h>

#include <ctime>
#include <string>
#include <vector>

namespace mgs {

struct CertificateFields {
    std::string subject_dn; // RFC 4514
    std::string issuer_dn;
    std::string serial;     // upper-case hex
    std::string version;
    std::string signature_algorithm;
    std::string key_algorithm;
    std::string valid_from; // "Nov 22 14:59:54 2026 GMT", as mod_ssl
    std::string valid_until;
    time_t expires = 0;
    std::vector<std::string> alt_names; // "DNSNAME:x", "UNSUPPORTED"
    std::string pem;        // only when asked for (GnuTLSExportCertificates)
};

CertificateFields read_certificate_fields(gnutls_x509_crt_t crt, bool with_pem);

std::string certificate_time(time_t t);
std::vector<std::string> subject_alt_names(gnutls_x509_crt_t crt);

} // namespace mgs

#include "src/certificate_fields.h"

#include "keystore/gnutls_handles.h"
#include "keystore/hex.h"

namespace mgs {

namespace {

std::string dn_of(gnutls_x509_crt_t crt, bool issuer)
{
    GnutlsDatum d;
    int rc = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &d.d, 0) : gnutls_x509_crt_get_dn3(crt, &d.d, 0);
    return rc < 0 ? std::string() : d.text();
}

std::string pem_of(gnutls_x509_crt_t crt)
{
    GnutlsDatum d;
    return gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d.d) < 0 ? std::string() : d.text();
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

CertificateFields read_certificate_fields(gnutls_x509_crt_t crt, bool with_pem)
{
    CertificateFields f;
    f.subject_dn = dn_of(crt, false);
    f.issuer_dn = dn_of(crt, true);
    unsigned char serial[64];
    size_t len = sizeof serial;
    if (gnutls_x509_crt_get_serial(crt, serial, &len) >= 0)
        f.serial = upper_hex({serial, len});
    f.version = std::to_string(gnutls_x509_crt_get_version(crt));
    const char* sig = gnutls_sign_get_name(
        static_cast<gnutls_sign_algorithm_t>(gnutls_x509_crt_get_signature_algorithm(crt)));
    f.signature_algorithm = sig ? sig : "UNKNOWN";
    const char* pk =
        gnutls_pk_algorithm_get_name(static_cast<gnutls_pk_algorithm_t>(gnutls_x509_crt_get_pk_algorithm(crt, nullptr)));
    f.key_algorithm = pk ? pk : "UNKNOWN";
    f.valid_from = certificate_time(gnutls_x509_crt_get_activation_time(crt));
    f.expires = gnutls_x509_crt_get_expiration_time(crt);
    f.valid_until = certificate_time(f.expires);
    f.alt_names = subject_alt_names(crt);
    if (with_pem)
        f.pem = pem_of(crt);
    return f;
}

} // namespace mgs

#include "pkcs11/token_certificate.h"

#include "keystore/error.h"
#include "pkcs11/url.h"

#include <gnutls/pkcs11.h>

namespace mgs::pkcs11 {

std::vector<X509Crt> load_token_certificates(const std::string& url)
{
    std::vector<X509Crt> certs;
    certs.push_back(new_x509_crt());
    if (int rc = gnutls_x509_crt_import_url(certs.back().get(), url.c_str(), 0); rc < 0)
        throw_gnutls(redact_url(url) + ": cannot read the certificate from the token", rc);
    // Follow issuers the token also holds, stopping at a self-signed one.
    for (int depth = 0; depth < 8; ++depth) {
        gnutls_x509_crt_t last = certs.back().get();
        if (gnutls_x509_crt_check_issuer(last, last))
            break;
        gnutls_datum_t issuer{};
        if (gnutls_pkcs11_get_raw_issuer(url.c_str(), last, &issuer, GNUTLS_X509_FMT_DER, 0) < 0)
            break;
        X509Crt next = new_x509_crt();
        int rc = gnutls_x509_crt_import(next.get(), &issuer, GNUTLS_X509_FMT_DER);
        gnutls_free(issuer.data);
        if (rc < 0)
            break;
        certs.push_back(std::move(next));
    }
    return certs;
}

} // namespace mgs::pkcs11

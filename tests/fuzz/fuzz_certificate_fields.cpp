// The SSL_SERVER_* / SSL_CLIENT_* certificate fields (src/certificate_fields.h)
// from arbitrary DER: a client's certificate is the attacker's. Whatever
// gnutls_x509_crt_import() accepts is read, with and without its PEM.
#include "src/certificate_fields.h"

#include "keystore/gnutls_handles.h"

#include <gnutls/x509.h>

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    gnutls_x509_crt_t raw = nullptr;
    if (gnutls_x509_crt_init(&raw) < 0)
        return 0;
    mgs::X509Crt crt(raw);
    gnutls_datum_t d{const_cast<unsigned char*>(data), static_cast<unsigned>(size)};
    if (gnutls_x509_crt_import(crt.get(), &d, GNUTLS_X509_FMT_DER) < 0)
        return 0;
    mgs::CertificateFields plain = mgs::read_certificate_fields(crt.get(), false);
    if (!plain.pem.empty())
        std::abort();
    mgs::CertificateFields with_pem = mgs::read_certificate_fields(crt.get(), true);
    if (with_pem.subject_dn != plain.subject_dn || with_pem.serial != plain.serial ||
        with_pem.alt_names != plain.alt_names)
        std::abort();
    std::vector<std::string> sans = mgs::subject_alt_names(crt.get());
    if (sans != plain.alt_names)
        std::abort();
    (void)mgs::certificate_time(plain.expires);
    return 0;
}

#include "src/certificate_chain.h"

#include "keystore/error.h"
#include "keystore/file_io.h"

namespace mgs {

CertificateChain CertificateChain::from_file(const std::string& path)
{
    return from_pem(read_file(path), path);
}

CertificateChain CertificateChain::from_pem(std::span<const std::uint8_t> pem, const std::string& source)
{
    if (!has_pem_label(pem, "CERTIFICATE") && !has_pem_label(pem, "X509 CERTIFICATE"))
        throw Error(source + " contains no PEM certificate (expected -----BEGIN CERTIFICATE-----)");
    gnutls_datum_t d{const_cast<unsigned char*>(pem.data()), static_cast<unsigned>(pem.size())};
    gnutls_x509_crt_t* list = nullptr;
    unsigned n = 0;
    // Unsorted chains are refused: clients need EE first, then its issuers.
    int rc = gnutls_x509_crt_list_import2(&list, &n, &d, GNUTLS_X509_FMT_PEM,
                                          GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (rc < 0) {
        if (rc == GNUTLS_E_CERTIFICATE_LIST_UNSORTED)
            throw Error(source + ": the certificates are not in order; put the server certificate first, "
                                 "then each issuer");
        throw_gnutls(source + " is not a valid PEM certificate chain", rc);
    }
    CertificateChain chain;
    chain.source_ = source;
    for (unsigned i = 0; i < n; ++i)
        chain.certs_.emplace_back(list[i]);
    gnutls_free(list);
    if (chain.certs_.empty())
        throw Error(source + " contains no certificate");
    return chain;
}

CertificateChain CertificateChain::from_certificates(std::vector<X509Crt> certs, std::string source)
{
    if (certs.empty())
        throw Error(source + " contains no certificate");
    CertificateChain chain;
    chain.certs_ = std::move(certs);
    chain.source_ = std::move(source);
    return chain;
}

PubKey CertificateChain::leaf_public_key() const
{
    PubKey pub = new_pubkey();
    if (int rc = gnutls_pubkey_import_x509(pub.get(), leaf(), 0); rc < 0)
        throw_gnutls(source_ + ": cannot read the certificate's public key", rc);
    return pub;
}

std::string CertificateChain::leaf_subject() const
{
    GnutlsDatum dn;
    if (gnutls_x509_crt_get_dn3(leaf(), &dn.d, 0) < 0)
        return {};
    return std::string(reinterpret_cast<const char*>(dn.d.data), dn.d.size);
}

std::vector<gnutls_pcert_st> CertificateChain::make_pcerts() const
{
    std::vector<gnutls_pcert_st> out(certs_.size());
    for (std::size_t i = 0; i < certs_.size(); ++i) {
        if (int rc = gnutls_pcert_import_x509(&out[i], certs_[i].get(), 0); rc < 0) {
            for (std::size_t j = 0; j < i; ++j)
                gnutls_pcert_deinit(&out[j]);
            throw_gnutls(source_ + ": cannot use certificate " + std::to_string(i + 1), rc);
        }
    }
    return out;
}

Bytes certificate_der(gnutls_x509_crt_t crt)
{
    GnutlsDatum der;
    if (int rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der.d); rc < 0)
        throw_gnutls("cannot encode a certificate", rc);
    return der.bytes();
}

} // namespace mgs

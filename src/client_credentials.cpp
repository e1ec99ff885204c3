#include "src/client_credentials.h"

#include "keystore/error.h"
#include "src/key_binding.h"
#include "src/server_credentials.h"

namespace mgs {

ClientCredentials::ClientCredentials(const std::string& ca_file, const std::string& crl_file,
                                     std::optional<CertificateChain> chain, std::shared_ptr<Signer> signer)
    : signer_(std::move(signer))
{
    gnutls_certificate_credentials_t c = nullptr;
    if (int rc = gnutls_certificate_allocate_credentials(&c); rc < 0)
        throw_gnutls("gnutls_certificate_allocate_credentials", rc);
    creds_.reset(c);
    if (!ca_file.empty()) {
        int n = gnutls_certificate_set_x509_trust_file(c, ca_file.c_str(), GNUTLS_X509_FMT_PEM);
        if (n < 0)
            throw_gnutls("cannot read CA certificates from " + ca_file, n);
        if (n == 0)
            throw Error(ca_file + " contains no CA certificate");
    }
    if (!crl_file.empty())
        if (int n = gnutls_certificate_set_x509_crl_file(c, crl_file.c_str(), GNUTLS_X509_FMT_PEM); n < 0)
            throw_gnutls("cannot read CRLs from " + crl_file, n);
    if (chain && signer_) {
        if (public_key_der(chain->leaf_public_key().get()) != public_key_der(signer_->public_key().get()))
            throw KeyMismatchError(chain->leaf_subject());
        gnutls_certificate_set_flags(c, GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
        PrivKey key = bind_signer(*signer_);
        std::vector<gnutls_pcert_st> pcerts = chain->make_pcerts();
        if (int rc = gnutls_certificate_set_key(c, nullptr, 0, pcerts.data(), static_cast<int>(pcerts.size()),
                                                key.get());
            rc < 0) {
            for (auto& p : pcerts)
                gnutls_pcert_deinit(&p);
            throw_gnutls("cannot use the proxy client certificate and key together", rc);
        }
        key.release();
    }
}

} // namespace mgs

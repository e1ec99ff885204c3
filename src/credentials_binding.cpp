#include "src/credentials_binding.h"

#include "src/key_binding.h"

namespace mgs {

void bind_chain_and_key(gnutls_certificate_credentials_t creds, const CertificateChain& chain, Signer& signer,
                        const std::string& what)
{
    if (public_key_der(chain.leaf_public_key().get()) != public_key_der(signer.public_key().get()))
        throw KeyMismatchError(chain.leaf_subject());
    // Our own comparison above replaces GnuTLS's test signature, which would
    // make a hardware key sign in the Apache parent process.
    gnutls_certificate_set_flags(creds, GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
    PrivKey key = bind_signer(signer);
    std::vector<gnutls_pcert_st> pcerts = chain.make_pcerts();
    if (int rc = gnutls_certificate_set_key(creds, nullptr, 0, pcerts.data(), static_cast<int>(pcerts.size()),
                                            key.get());
        rc < 0) {
        for (auto& p : pcerts)
            gnutls_pcert_deinit(&p);
        throw_gnutls("cannot use the " + what + " certificate and key together", rc);
    }
    // The credentials own the key and the pcert contents now.
    key.release();
}

void load_trust_file(gnutls_certificate_credentials_t creds, const std::string& pem_file, bool with_crls)
{
    int n = gnutls_certificate_set_x509_trust_file(creds, pem_file.c_str(), GNUTLS_X509_FMT_PEM);
    if (n < 0)
        throw_gnutls("cannot read CA certificates from " + pem_file, n);
    if (n == 0)
        throw Error(pem_file + " contains no CA certificate");
    if (with_crls)
        if (int crls = gnutls_certificate_set_x509_crl_file(creds, pem_file.c_str(), GNUTLS_X509_FMT_PEM);
            crls < 0 && crls != GNUTLS_E_BASE64_DECODING_ERROR)
            throw_gnutls("cannot read CRLs from " + pem_file, crls);
}

void load_crl_file(gnutls_certificate_credentials_t creds, const std::string& pem_file)
{
    if (int n = gnutls_certificate_set_x509_crl_file(creds, pem_file.c_str(), GNUTLS_X509_FMT_PEM); n < 0)
        throw_gnutls("cannot read CRLs from " + pem_file, n);
}

} // namespace mgs

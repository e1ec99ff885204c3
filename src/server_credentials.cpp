#include "src/server_credentials.h"

#include "src/key_binding.h"
#include "src/tls_connection.h"

namespace mgs {

namespace {

CertCredentials new_credentials()
{
    gnutls_certificate_credentials_t c = nullptr;
    if (int rc = gnutls_certificate_allocate_credentials(&c); rc < 0)
        throw_gnutls("gnutls_certificate_allocate_credentials", rc);
    return CertCredentials(c);
}

} // namespace

ServerCredentials::ServerCredentials(CertificateChain chain, std::shared_ptr<Signer> signer)
    : chain_(std::move(chain)), leaf_fields_(read_certificate_fields(chain_.leaf(), true)),
      signer_(std::move(signer)), creds_(new_credentials())
{
    if (public_key_der(chain_.leaf_public_key().get()) != public_key_der(signer_->public_key().get()))
        throw KeyMismatchError(chain_.leaf_subject());

    // Our own comparison above replaces GnuTLS's test signature, which would
    // make a hardware key sign in the Apache parent process.
    gnutls_certificate_set_flags(creds_.get(), GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
    gnutls_certificate_set_known_dh_params(creds_.get(), GNUTLS_SEC_PARAM_MEDIUM);
    // Client certificates are checked by the connection (policy per vhost).
    gnutls_certificate_set_verify_function(creds_.get(), TlsConnection::verify_client_cb);

    PrivKey key = bind_signer(*signer_);
    std::vector<gnutls_pcert_st> pcerts = chain_.make_pcerts();
    int rc = gnutls_certificate_set_key(creds_.get(), nullptr, 0, pcerts.data(), static_cast<int>(pcerts.size()),
                                        key.get());
    if (rc < 0) {
        for (auto& p : pcerts)
            gnutls_pcert_deinit(&p);
        throw_gnutls("cannot use the certificate and key together", rc);
    }
    // The credentials own the key and the pcert contents now.
    key.release();
}

void ServerCredentials::trust_client_cas(const std::string& pem_file)
{
    int n = gnutls_certificate_set_x509_trust_file(creds_.get(), pem_file.c_str(), GNUTLS_X509_FMT_PEM);
    if (n < 0)
        throw_gnutls("cannot read CA certificates from " + pem_file, n);
    if (n == 0)
        throw Error(pem_file + " contains no CA certificate");
    // CRLs may sit in the same file: revoked client certificates then fail.
    if (int crls = gnutls_certificate_set_x509_crl_file(creds_.get(), pem_file.c_str(), GNUTLS_X509_FMT_PEM);
        crls < 0 && crls != GNUTLS_E_BASE64_DECODING_ERROR)
        throw_gnutls("cannot read CRLs from " + pem_file, crls);
}

void ServerCredentials::staple_ocsp_response(std::span<const std::uint8_t> der, const std::string& source)
{
    gnutls_datum_t d{const_cast<unsigned char*>(der.data()), static_cast<unsigned>(der.size())};
    if (int rc = gnutls_certificate_set_ocsp_status_request_mem(creds_.get(), &d, 0, GNUTLS_X509_FMT_DER); rc < 0)
        throw_gnutls(source + " is not an OCSP response for a certificate of this chain", rc);
}

void ServerCredentials::staple_ocsp_from(gnutls_status_request_ocsp_func fetch, void* data)
{
    if (int rc = gnutls_certificate_set_ocsp_status_request_function2(creds_.get(), 0, fetch, data); rc < 0)
        throw_gnutls("cannot set the OCSP stapling function", rc);
}

void ServerCredentials::use_dh_params(std::span<const std::uint8_t> pkcs3_pem, const std::string& source)
{
    gnutls_dh_params_t params = nullptr;
    if (int rc = gnutls_dh_params_init(&params); rc < 0)
        throw_gnutls("gnutls_dh_params_init", rc);
    std::unique_ptr<gnutls_dh_params_int, GnutlsDeleter<gnutls_dh_params_deinit>> owner(params);
    gnutls_datum_t d{const_cast<unsigned char*>(pkcs3_pem.data()), static_cast<unsigned>(pkcs3_pem.size())};
    if (int rc = gnutls_dh_params_import_pkcs3(params, &d, GNUTLS_X509_FMT_PEM); rc < 0)
        throw_gnutls(source + " holds no PKCS #3 DH parameters", rc);
    // The credentials keep a pointer, not a copy: they own the parameters now.
    gnutls_certificate_set_dh_params(creds_.get(), params);
    dh_params_ = std::move(owner);
}

} // namespace mgs

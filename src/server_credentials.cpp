#include "src/server_credentials.h"

#include "src/tls_connection.h"

namespace mgs {

ServerCredentials::ServerCredentials(CertificateChain chain, std::shared_ptr<Signer> signer)
    : chain_(std::move(chain)), leaf_fields_(read_certificate_fields(chain_.leaf(), true)),
      signer_(std::move(signer)), creds_(new_certificate_credentials())
{
    bind_chain_and_key(creds_.get(), chain_, *signer_, "server");
    gnutls_certificate_set_known_dh_params(creds_.get(), GNUTLS_SEC_PARAM_MEDIUM);
    // Client certificates are checked by the connection (policy per vhost).
    gnutls_certificate_set_verify_function(creds_.get(), TlsConnection::verify_client_cb);
}

void ServerCredentials::trust_client_cas(const std::string& pem_file)
{
    // CRLs may sit in the same file: revoked client certificates then fail.
    load_trust_file(creds_.get(), pem_file, true);
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

// What a TLS virtual host presents: a certificate chain and the Signer of its
// key, bound into GnuTLS certificate credentials. Built once at configuration
// time; read-only and shared by every connection afterwards.
#pragma once

#include "keystore/error.h"
#include "src/certificate_chain.h"
#include "src/certificate_fields.h"
#include "src/credentials_binding.h"

#include <memory>

namespace mgs {

class ServerCredentials {
public:
    // Throws KeyMismatchError when the key's public half is not the one in the
    // chain's end-entity certificate, mgs::Error for anything else.
    ServerCredentials(CertificateChain chain, std::shared_ptr<Signer> signer);
    ServerCredentials(const ServerCredentials&) = delete;
    ServerCredentials& operator=(const ServerCredentials&) = delete;

    gnutls_certificate_credentials_t get() const { return creds_.get(); }
    // PKCS #3 PEM parameters for DHE instead of GnuTLS's built-in groups.
    // Throws mgs::Error naming `source`.
    void use_dh_params(std::span<const std::uint8_t> pkcs3_pem, const std::string& source);
    // CAs (PEM file) that client certificates must chain to, and any CRLs
    // in the same file; throws mgs::Error naming the file when it holds no CA.
    void trust_client_cas(const std::string& pem_file);
    // A DER OCSP response to staple (GnuTLS matches it to the certificate
    // in the chain it is about). Throws mgs::Error naming `source`.
    void staple_ocsp_response(std::span<const std::uint8_t> der, const std::string& source);
    // Staple whatever `fetch` returns at each handshake (0 and a response
    // from gnutls_malloc, or GNUTLS_E_NO_CERTIFICATE_STATUS for none).
    void staple_ocsp_from(gnutls_status_request_ocsp_func fetch, void* data);
    const CertificateChain& chain() const { return chain_; }
    const Signer& signer() const { return *signer_; }
    // The end-entity certificate's SSL_SERVER_* values, read at startup
    // rather than at every request.
    const CertificateFields& leaf_fields() const { return leaf_fields_; }

private:
    CertificateChain chain_;
    CertificateFields leaf_fields_;
    std::shared_ptr<Signer> signer_;
    std::unique_ptr<gnutls_dh_params_int, GnutlsDeleter<gnutls_dh_params_deinit>> dh_params_;
    CertCredentials creds_;
};

} // namespace mgs

// What this server presents and trusts as a TLS client towards back ends
// (the reverse proxy): trusted CAs and CRLs, and optionally its own
// certificate chain with a key from any keystore backend.
#pragma once

#include "src/certificate_chain.h"

#include <memory>
#include <optional>
#include <string>

namespace mgs {

class ClientCredentials {
public:
    // The client certificate and key may be absent. Throws KeyMismatchError
    // when they do not belong together.
    ClientCredentials(std::optional<CertificateChain> chain, std::shared_ptr<Signer> signer);
    // CAs back ends must chain to; CRLs for them. Throw mgs::Error naming the file.
    void trust_cas(const std::string& ca_file);
    void add_crls(const std::string& crl_file);
    ClientCredentials(const ClientCredentials&) = delete;
    ClientCredentials& operator=(const ClientCredentials&) = delete;

    gnutls_certificate_credentials_t get() const { return creds_.get(); }

private:
    std::shared_ptr<Signer> signer_; // outlives the credentials that use it
    CertCredentials creds_;
};

} // namespace mgs

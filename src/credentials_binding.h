// What server and proxy-client certificate credentials share: allocating
// them, binding a chain and a Signer's key into them, and loading CA and
// CRL files.
#pragma once

#include "keystore/error.h"
#include "keystore/gnutls_handles.h"
#include "src/certificate_chain.h"

#include <string>

namespace mgs {

class KeyMismatchError : public Error {
public:
    explicit KeyMismatchError(std::string subject)
        : Error("the private key does not match the certificate (subject " + subject + ")"),
          subject_(std::move(subject)) {}
    const std::string& certificate_subject() const { return subject_; }

private:
    std::string subject_;
};

// Throws KeyMismatchError when the signer's public key is not the chain's
// end entity's; mgs::Error (naming `what`) when GnuTLS refuses the pair.
void bind_chain_and_key(gnutls_certificate_credentials_t creds, const CertificateChain& chain, Signer& signer,
                        const std::string& what);

// CA certificates from a PEM file, which must hold at least one; CRLs in
// the same file are used too when `with_crls` (a file without any is fine).
void load_trust_file(gnutls_certificate_credentials_t creds, const std::string& pem_file, bool with_crls);
// A PEM file of CRLs.
void load_crl_file(gnutls_certificate_credentials_t creds, const std::string& pem_file);

} // namespace mgs

// A server's certificate chain, end entity first, as read from a PEM file.
#pragma once

#include "keystore/gnutls_handles.h"
#include "keystore/public_key.h"
#include "keystore/signer.h"

#include <string>
#include <vector>

namespace mgs {

// A certificate's DER encoding.
Bytes certificate_der(gnutls_x509_crt_t crt);

class CertificateChain {
public:
    // Throws mgs::Error naming `source` when the bytes hold no usable chain.
    static CertificateChain from_pem(std::span<const std::uint8_t> pem, const std::string& source);
    static CertificateChain from_file(const std::string& path);
    static CertificateChain from_certificates(std::vector<X509Crt> certs, std::string source);

    const std::string& source() const { return source_; }
    std::size_t size() const { return certs_.size(); }
    gnutls_x509_crt_t leaf() const { return certs_.front().get(); }
    gnutls_x509_crt_t at(std::size_t i) const { return certs_.at(i).get(); }

    PubKey leaf_public_key() const;
    std::string leaf_subject() const; // RFC 4514 DN
    // Fresh pcert copies, for handing (with ownership) to credentials.
    std::vector<gnutls_pcert_st> make_pcerts() const;

private:
    std::vector<X509Crt> certs_;
    std::string source_;
};

} // namespace mgs

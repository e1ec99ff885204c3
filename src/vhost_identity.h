// What decides who may connect to a virtual host and how, reduced to one
// digest. Two virtual hosts with equal identities may serve each other's
// requests on one TLS connection (otherwise 421), and sessions and session
// tickets are bound to the identity of the virtual host that made them.
// Built from contents (certificates, keys, CA files) as well as references,
// so servers of a pool with the same configuration agree on it.
#pragma once

#include "keystore/signer.h"
#include "src/server_credentials.h"

#include <span>
#include <string>
#include <string_view>

namespace mgs {

class IdentityDigest {
public:
    // Fields are length-prefixed: no two field lists hash alike.
    IdentityDigest& add(std::string_view label, std::span<const std::uint8_t> value);
    IdentityDigest& add(std::string_view label, std::string_view value);
    // Every certificate of the chain (DER) and the public key the signer
    // actually holds, beside the references they were loaded from.
    IdentityDigest& add_credentials(const ServerCredentials& credentials, std::string_view key_reference);
    // Every certificate of a chain (DER), and its source.
    IdentityDigest& add_chain(const CertificateChain& chain);
    // The public key a signer holds, and its reference.
    IdentityDigest& add_key(const Signer& signer, std::string_view key_reference);
    // SHA-256 of the fields, in hex.
    std::string hex() const;

private:
    Bytes input_;
};

} // namespace mgs

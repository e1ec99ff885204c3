#include "src/vhost_identity.h"

#include "keystore/error.h"
#include "keystore/gnutls_handles.h"
#include "keystore/hex.h"

#include <gnutls/crypto.h>

namespace mgs {

namespace {

void append_length(Bytes& out, std::size_t n)
{
    for (int shift = 56; shift >= 0; shift -= 8)
        out.push_back(static_cast<std::uint8_t>(n >> shift));
}

} // namespace

IdentityDigest& IdentityDigest::add(std::string_view label, std::span<const std::uint8_t> value)
{
    append_length(input_, label.size());
    input_.insert(input_.end(), label.begin(), label.end());
    append_length(input_, value.size());
    input_.insert(input_.end(), value.begin(), value.end());
    return *this;
}

IdentityDigest& IdentityDigest::add(std::string_view label, std::string_view value)
{
    return add(label, std::span(reinterpret_cast<const std::uint8_t*>(value.data()), value.size()));
}

IdentityDigest& IdentityDigest::add_chain(const CertificateChain& chain)
{
    add("certificate-source", chain.source());
    for (std::size_t i = 0; i < chain.size(); ++i)
        add("certificate", certificate_der(chain.at(i)));
    return *this;
}

IdentityDigest& IdentityDigest::add_key(const Signer& signer, std::string_view key_reference)
{
    add("key-reference", key_reference);
    return add("public-key", public_key_der(signer.public_key().get()));
}

IdentityDigest& IdentityDigest::add_credentials(const ServerCredentials& credentials, std::string_view key_reference)
{
    add_chain(credentials.chain());
    return add_key(credentials.signer(), key_reference);
}

std::string IdentityDigest::hex() const
{
    std::uint8_t digest[32];
    if (int rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, input_.data(), input_.size(), digest); rc < 0)
        throw_gnutls("cannot hash the virtual host's identity", rc);
    return mgs::hex(digest);
}

} // namespace mgs

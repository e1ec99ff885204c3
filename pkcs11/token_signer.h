// Keys on PKCS#11 tokens. The key never leaves the token: every signature
// is a C_Sign on one of a bounded pool of sessions, opened lazily in the
// process that signs (never inherited across fork), so worker threads sign
// in parallel.
#pragma once

#include "keystore/registry.h"

namespace mgs::pkcs11 {

class ProviderSet;

// The PIN a key reference logs in with: options.pin, else the URL's
// RFC 7512 pin-source ("file:PATH", p11-kit's "|PROGRAM"), read through
// options.secret_sources when set. Throws mgs::Error naming the source.
Secret token_pin(std::string_view reference, const KeyOptions& options);

// How many sessions a key may have open at once in this process (16 by
// default: a worker's threads).
void set_sessions_per_key(unsigned n);

class Pkcs11KeyBackend final : public KeyBackend {
public:
    // Keys opened here use (and reload, after a device failure) `providers`.
    explicit Pkcs11KeyBackend(ProviderSet& providers) : providers_(providers) {}
    std::string_view name() const override { return "pkcs11"; }
    bool claims_uri(std::string_view reference) const override;
    std::shared_ptr<Signer> open(std::string_view reference, const KeyOptions& options) const override;

private:
    ProviderSet& providers_;
};

} // namespace mgs::pkcs11

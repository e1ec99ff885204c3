// Private keys in files: PEM or DER; PKCS#1, PKCS#8 (plain or encrypted),
// SEC1, and legacy OpenSSL encrypted PEM; RSA, ECDSA and EdDSA.
#pragma once

#include "keystore/registry.h"

namespace mgs {

class FileKeyBackend final : public KeyBackend {
public:
    std::string_view name() const override { return "file"; }
    // Registered last: takes every reference the others left.
    bool claims(std::string_view) const override { return true; }
    std::shared_ptr<Signer> open(std::string_view reference, const KeyOptions& options) const override;
};

// Decodes key bytes (exposed for unit tests). `source` names them in errors.
// RSA keys go to libcrypto unless `rsa` says otherwise (keystore/
// libcrypto_rsa_signer.h). RsaEngine::automatic keeps GnuTLS when the key
// must decrypt (`decrypts`: RSA key exchange), in GnuTLS's FIPS 140 mode,
// and for a key libcrypto refuses (`fallback_reason`, when given, says why);
// RsaEngine::libcrypto throws when the key must decrypt.
std::shared_ptr<Signer> load_key_bytes(std::span<const std::uint8_t> data, const std::string& source,
                                       const Secret& passphrase, RsaEngine rsa = RsaEngine::automatic,
                                       bool decrypts = false, std::string* fallback_reason = nullptr);

} // namespace mgs

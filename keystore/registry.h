// Key references resolve to Signers through a registry of backends. Each
// backend claims the reference forms it understands ("pkcs11:...", a TSS2 PEM
// file, "handle:0x81..."); the file backend, added last, takes the rest.
#pragma once

#include "keystore/libcrypto_rsa_signer.h"
#include "keystore/secret.h"
#include "keystore/signer.h"

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mgs {

// What a backend may need besides the reference itself.
struct KeyOptions {
    Secret pin;     // key passphrase, token PIN or TPM key authorization
    Secret srk_pin; // TPM parent authorization
    std::string tpm_tcti; // how to reach the TPM (GnuTLSTPMTCTI); empty: tpm2-tss's search
    RsaEngine rsa_engine = RsaEngine::automatic; // who signs with an RSA key from a file (GnuTLSRSASigner)
    // The key may have to decrypt (TLS 1.2 RSA key exchange is allowed):
    // only GnuTLS does that, in constant time.
    bool rsa_decrypts = false;
    // A warning for the administrator that does not stop the key from
    // loading (e.g. RsaEngine::automatic falling back to GnuTLS); null: dropped.
    std::function<void(const std::string&)> notice;
    // Where a pin-source in a key reference is read through (once per
    // configuration load); null: read directly.
    class SecretSourceCache* secret_sources = nullptr;
};

class KeyBackend {
public:
    virtual ~KeyBackend() = default;
    virtual std::string_view name() const = 0;
    // Whether this backend takes the reference: by a scheme (claims_uri) or
    // by what the file it names holds.
    virtual bool claims(std::string_view reference) const { return claims_uri(reference); }
    // References that are not file paths ("pkcs11:...", "handle:..."):
    // they are not made relative to ServerRoot.
    virtual bool claims_uri(std::string_view) const { return false; }
    // Throws mgs::Error with a message naming the problem (not the secret).
    virtual std::shared_ptr<Signer> open(std::string_view reference, const KeyOptions& options) const = 0;
};

class KeyRegistry {
public:
    void add(std::unique_ptr<KeyBackend> backend);
    const KeyBackend* backend_for(std::string_view reference) const;
    // False for a reference some backend takes by its scheme.
    bool names_a_file(std::string_view reference) const;
    std::shared_ptr<Signer> open(std::string_view reference, const KeyOptions& options) const;

private:
    std::vector<std::unique_ptr<KeyBackend>> backends_;
};

} // namespace mgs

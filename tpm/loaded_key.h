// A TPM 2.0 key loaded into a TPM: from a TSS2 key file (under the owner
// SRK, created from the standard template, or under the persistent parent
// the file names) or a persistent handle. Transient objects are flushed
// when the LoadedKey goes away: TPM object slots are few.
#pragma once

#include "keystore/error.h"
#include "keystore/gnutls_handles.h"
#include "keystore/secret.h"
#include "keystore/signer.h"
#include "tpm/key_file.h"
#include "tpm/tpm_context.h"

#include <optional>

namespace mgs::tpm {

// A TPM command failed; rc tells whether the link or the TPM itself failed.
class TpmError : public Error {
public:
    TpmError(const std::string& what, TSS2_RC rc) : Error(what + ": " + rc_text(rc)), rc_(rc) {}
    TSS2_RC rc() const { return rc_; }

private:
    TSS2_RC rc_;
};

// The TPM's name for a GnuTLS hash, or TPM2_ALG_ERROR if it has none.
TPMI_ALG_HASH tpm_hash_alg(gnutls_digest_algorithm_t hash);

// Everything needed to load a key again (after a TPM restart, or in the key
// agent): no TPM state, only the reference and its secrets.
struct KeySpec {
    std::string reference;           // the file path or "handle:0x81..."
    std::optional<Tss2KeyFile> file; // set for key files
    std::uint32_t persistent = 0;    // set for handle: references
    Secret auth;                     // the key's authorization (GnuTLSPIN)
    Secret parent_auth;              // the SRK's / owner's authorization (GnuTLSSRKPIN)
    std::string tcti;                // GnuTLSTPMTCTI
};

class LoadedKey {
public:
    // Throws TpmError with the step that failed and the decoded response code.
    LoadedKey(TpmContext& tpm, const KeySpec& spec);
    ~LoadedKey();
    LoadedKey(const LoadedKey&) = delete;
    LoadedKey& operator=(const LoadedKey&) = delete;

    const TPMT_PUBLIC& public_area() const { return public_; }
    PubKey public_key() const;
    gnutls_pk_algorithm_t algorithm() const;
    unsigned bits() const;
    gnutls_ecc_curve_t curve() const;

    // A key with the decrypt attribute and a NULL scheme can do raw RSA, so
    // PKCS#1 v1.5 and PSS padding can be done here with the salt TLS needs.
    bool raw_rsa() const;
    bool may_sign() const;

    Bytes rsa_raw(std::span<const std::uint8_t> block);
    // TPM2_Sign; alg is TPM2_ALG_ECDSA, TPM2_ALG_RSASSA or TPM2_ALG_RSAPSS.
    Bytes sign_digest(TPM2_ALG_ID alg, gnutls_digest_algorithm_t hash, std::span<const std::uint8_t> digest);

    // The TPM lost this object (is_object_gone): drop our handle without
    // flushing, since the TPM may have given its number to another object.
    void forget() noexcept;

private:
    void release() noexcept;

    TpmContext& tpm_;
    ESYS_TR handle_ = ESYS_TR_NONE;
    bool transient_ = false;
    TPMT_PUBLIC public_{};
};

} // namespace mgs::tpm

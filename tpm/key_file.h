// TPM 2.0 key files in the standard "TSS2 PRIVATE KEY" PEM format
// (draft-bottomley-tpm2-keys), as tpm2-openssl, tpm2-tss-engine and
// GnuTLS >= 3.7.3 write them.
#pragma once

#include "keystore/signer.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace mgs::tpm {

struct Tss2KeyFile {
    std::string type_oid;            // 2.23.133.10.1.3 for a loadable key
    std::optional<bool> empty_auth;  // true: the key needs no authorization
    bool has_policy = false;         // policy-bound keys need policy sessions
    bool has_secret = false;         // importable keys carry an encrypted seed
    bool rsa_parent = false;         // the SRK is RSA-2048 instead of ECC P-256
    std::uint32_t parent = 0;        // 0x40000001 (owner SRK) or a persistent handle
    std::string description;
    Bytes public_area;               // marshalled TPM2B_PUBLIC
    Bytes private_area;              // marshalled TPM2B_PRIVATE
};

inline constexpr const char* loadable_key_oid = "2.23.133.10.1.3";
inline constexpr const char* importable_key_oid = "2.23.133.10.1.4";
inline constexpr const char* sealed_data_oid = "2.23.133.10.1.5";

// True if the bytes are a PEM file with a TSS2 PRIVATE KEY block.
bool is_tss2_pem(std::span<const std::uint8_t> data);

// Throws mgs::Error naming `source` and what is malformed. Refuses what this
// backend cannot load (importable keys, sealed data, policy-bound keys)
// with a message saying so.
Tss2KeyFile parse_tss2_key(std::span<const std::uint8_t> pem, const std::string& source);

} // namespace mgs::tpm

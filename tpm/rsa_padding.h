// RSA signature encodings done in software, for TPM keys that offer raw RSA
// (TPM2_RSA_Decrypt with a NULL scheme): the TPM's own RSAPSS picks a salt
// length that varies between TPMs, while TLS 1.3 needs salt = hash length.
#pragma once

#include "keystore/signer.h"

#include <gnutls/gnutls.h>

namespace mgs::tpm {

// The hash of `data` (GnuTLS).
Bytes digest_of(gnutls_digest_algorithm_t hash, std::span<const std::uint8_t> data);

// EMSA-PKCS1-v1_5 type 1 block of `modulus_bytes` around `t` (a DigestInfo,
// or the 36-byte MD5+SHA1 of TLS 1.0).
Bytes pkcs1_v15_block(std::span<const std::uint8_t> t, std::size_t modulus_bytes);

// The DigestInfo of a hash, for PKCS#1 v1.5.
Bytes digest_info(gnutls_digest_algorithm_t hash, std::span<const std::uint8_t> digest);

// EMSA-PSS-ENCODE (RFC 8017 9.1.1) with MGF1 over `hash` and a random salt
// as long as the hash, padded to `modulus_bits`.
Bytes pss_block(gnutls_digest_algorithm_t hash, std::span<const std::uint8_t> digest, unsigned modulus_bits);

} // namespace mgs::tpm

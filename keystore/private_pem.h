// Decoding a private key's PEM block without leaving copies behind.
//
// GnuTLS decodes PEM by first copying the base64 text (without its line
// breaks) to a buffer it frees without wiping: the key's encoding then
// stays in freed heap memory, and an Apache parent's freed memory is in
// every worker it forks (GnuTLSKeyIsolation's memory test found it). So
// the file backend decodes unencrypted PEM itself, into a buffer the
// caller wipes, and hands GnuTLS DER.
#pragma once

#include "keystore/bytes.h"

#include <optional>
#include <span>

namespace mgs {

// The DER of the first PEM block whose label ends in "PRIVATE KEY" and
// that has no header lines (an OpenSSL-encrypted "Proc-Type:" block has:
// GnuTLS decrypts those, and their text is ciphertext); std::nullopt when
// there is none or its base64 is malformed (GnuTLS then reports on the
// original bytes). Every intermediate buffer is wiped; the caller wipes
// the result.
std::optional<Bytes> private_key_pem_to_der(std::span<const std::uint8_t> pem);

} // namespace mgs

// Hexadecimal text of bytes (through gnutls_hex_encode2).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace mgs {

std::string hex(std::span<const std::uint8_t> bytes);       // lower case
std::string upper_hex(std::span<const std::uint8_t> bytes); // as in SSL_SESSION_ID, SSL_*_M_SERIAL

} // namespace mgs

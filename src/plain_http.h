// Plain HTTP sent to a TLS port: how to recognise it and what to answer.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mgs {

// A TLS connection starts with a record header (content type 0x14..0x17) or
// an SSLv2 hello (0x80); an HTTP request starts with a method in capitals.
bool looks_like_plain_http(std::span<const std::uint8_t> first_bytes);

// The complete plaintext "400 Bad Request" response, body included, that
// tells the client to use `https_url` (e.g. "https://www.example.com:8443/").
std::string plain_http_response(std::string_view https_url);

} // namespace mgs

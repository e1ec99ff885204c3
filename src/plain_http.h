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

// The "error-notes" (HTML) of the 400 Bad Request that Apache sends, with
// its own error machinery (ErrorDocument, the access log), to a client that
// spoke plain HTTP to a TLS port: mod_ssl's sentences and a link to
// `https_url` (e.g. "https://www.example.com:8443/"), escaped.
std::string plain_http_error_notes(std::string_view https_url);

} // namespace mgs

// pkcs11: URLs (RFC 7512) as they may appear in messages.
#pragma once

#include <string>
#include <string_view>

namespace mgs::pkcs11 {

bool is_pkcs11_url(std::string_view reference);
// The URL with pin-value and pin-source replaced by "***".
std::string redact_url(std::string_view url);
// The percent-decoded value of a path (";name=") or query ("?name=",
// "&name=") attribute, or empty.
std::string url_attribute(std::string_view url, std::string_view name);

} // namespace mgs::pkcs11

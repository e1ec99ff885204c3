// pkcs11: URLs (RFC 7512), read with p11-kit's own URI parser, the one
// GnuTLS uses when it opens them, so what we check, log and act on is what
// the token layer will see.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mgs::pkcs11 {

bool is_pkcs11_url(std::string_view reference);

// Empty if p11-kit parses `url`, otherwise why not ("URI encoding invalid
// or corrupted"), for a configuration error.
std::string url_syntax_error(std::string_view url);

// The URL for a log line: re-formatted by p11-kit without pin-value and
// pin-source (their presence shown as "pin-value=***"); a URL p11-kit
// cannot parse is not echoed at all.
std::string redact_url(std::string_view url);

// The percent-decoded query attributes GnuTLS does not act on itself.
std::optional<std::string> url_module_path(std::string_view url);
std::optional<std::string> url_pin_source(std::string_view url);
// The object label (object=...), percent-decoded.
std::optional<std::string> url_object_label(std::string_view url);

} // namespace mgs::pkcs11

#include "keystore/private_pem.h"

#include <gnutls/gnutls.h>

#include <string>
#include <string_view>

namespace mgs {

namespace {

int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

// Decodes straight into `out` (reserved once: no reallocation leaves a
// copy). False on anything that is not base64, whitespace or final padding.
bool decode_base64(std::string_view text, Bytes& out)
{
    out.reserve(text.size() / 4 * 3 + 3);
    std::uint32_t acc = 0;
    int bits = 0, padding = 0;
    for (char c : text) {
        if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
            continue;
        if (c == '=') {
            ++padding;
            continue;
        }
        int v = base64_value(c);
        if (v < 0 || padding)
            return false;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>(acc >> bits));
        }
    }
    acc = 0;
    return padding <= 2 && bits < 6 && !out.empty();
}

} // namespace

std::optional<Bytes> private_key_pem_to_der(std::span<const std::uint8_t> pem)
{
    std::string_view text(reinterpret_cast<const char*>(pem.data()), pem.size());
    for (std::size_t at = text.find("-----BEGIN "); at != std::string_view::npos;
         at = text.find("-----BEGIN ", at + 1)) {
        const std::size_t label_start = at + 11;
        const std::size_t label_end = text.find("-----", label_start);
        if (label_end == std::string_view::npos)
            return std::nullopt;
        const std::string_view label = text.substr(label_start, label_end - label_start);
        if (!label.ends_with("PRIVATE KEY") || label.find('\n') != std::string_view::npos)
            continue;
        const std::size_t body = text.find('\n', label_end);
        const std::string end_marker = "-----END " + std::string(label) + "-----";
        const std::size_t end = body == std::string_view::npos ? body : text.find(end_marker, body);
        if (end == std::string_view::npos)
            return std::nullopt;
        const std::string_view base64 = text.substr(body + 1, end - body - 1);
        if (base64.find(':') != std::string_view::npos)
            return std::nullopt; // header lines: GnuTLS's to read
        Bytes der;
        if (!decode_base64(base64, der)) {
            gnutls_memset(der.data(), 0, der.size()); // all it holds (reserved once, never moved)
            return std::nullopt;
        }
        return der;
    }
    return std::nullopt;
}

} // namespace mgs

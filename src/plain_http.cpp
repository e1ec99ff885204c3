#include "src/plain_http.h"

namespace mgs {

bool looks_like_plain_http(std::span<const std::uint8_t> first_bytes)
{
    if (first_bytes.empty())
        return false;
    for (std::size_t i = 0; i < first_bytes.size() && i < 4; ++i) {
        std::uint8_t b = first_bytes[i];
        if (b == ' ' && i > 0)
            return true;
        if (b < 'A' || b > 'Z')
            return false;
    }
    return true;
}

namespace {

// HTML-escape what might come from a client (the URL contains its Host).
std::string escape_html(std::string_view s)
{
    std::string out;
    for (char c : s) {
        switch (c) {
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '&': out += "&amp;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
        }
    }
    return out;
}

} // namespace

std::string plain_http_error_notes(std::string_view https_url)
{
    // The sentences mod_ssl uses, so monitoring that looks for them keeps working.
    return "Reason: You're speaking plain HTTP to an SSL-enabled server port.<br />\n"
           " Instead use the HTTPS scheme to access this URL, please.<br />\n"
           "This port speaks HTTPS: <a href=\"" + escape_html(https_url) + "\">" + escape_html(https_url) +
           "</a><br />\n";
}

} // namespace mgs

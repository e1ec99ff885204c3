#include "pkcs11/url.h"

namespace mgs::pkcs11 {

bool is_pkcs11_url(std::string_view reference) { return reference.starts_with("pkcs11:"); }

std::string redact_url(std::string_view url)
{
    // Attributes are separated by ';' in the path and '&' in the query.
    std::string out;
    std::size_t i = 0;
    while (i < url.size()) {
        std::size_t end = url.find_first_of(";?&", i + 1);
        if (end == std::string_view::npos)
            end = url.size();
        std::string_view part = url.substr(i, end - i);
        std::string_view attr = part;
        if (!attr.empty() && (attr[0] == ';' || attr[0] == '?' || attr[0] == '&'))
            attr.remove_prefix(1);
        if (attr.starts_with("pin-value=") || attr.starts_with("pin-source=")) {
            out += part.substr(0, part.find('=') + 1);
            out += "***";
        } else {
            out += part;
        }
        i = end;
    }
    return out;
}

} // namespace mgs::pkcs11

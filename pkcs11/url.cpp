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
        else if (attr.starts_with("pkcs11:"))
            attr.remove_prefix(7); // the first attribute follows the scheme
        std::size_t name_end = part.size() - attr.size();
        if (attr.starts_with("pin-value=") || attr.starts_with("pin-source=")) {
            out += part.substr(0, name_end + attr.find('=') + 1);
            out += "***";
        } else {
            out += part;
        }
        i = end;
    }
    return out;
}

std::string url_attribute(std::string_view url, std::string_view name)
{
    for (char sep : {':', ';', '?', '&'}) {
        std::string key = std::string(1, sep) + std::string(name) + "=";
        auto pos = url.find(key);
        if (pos == std::string_view::npos)
            continue;
        std::string_view raw = url.substr(pos + key.size());
        raw = raw.substr(0, raw.find_first_of(";?&"));
        auto hex = [](char ch) {
            return ch >= '0' && ch <= '9'   ? ch - '0'
                   : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                   : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                            : -1;
        };
        std::string out;
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] == '%' && i + 2 < raw.size() && hex(raw[i + 1]) >= 0 && hex(raw[i + 2]) >= 0) {
                out += static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2]));
                i += 2;
            } else {
                out += raw[i];
            }
        }
        return out;
    }
    return {};
}

} // namespace mgs::pkcs11

// pkcs11: URL handling (pkcs11/url.h) on arbitrary strings: syntax errors,
// module-path and pin-source, and redaction. Property (abort if violated):
// when p11-kit parses the input and finds a pin-value of 4 bytes or more,
// the redacted URL, parsed again by p11-kit, has no pin-value (other than
// the "***" marker), and does not contain the pin raw or percent-encoded
// (checked when the pin is >= 6 bytes and not all one byte, and when the
// URL without its pin does not carry the same text in another attribute).
#include "pkcs11/url.h"

#include <p11-kit/uri.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

struct UriFree {
    void operator()(P11KitUri* u) const { p11_kit_uri_free(u); }
};
using Uri = std::unique_ptr<P11KitUri, UriFree>;

// p11-kit's reading of `text` (as the project passes it: NUL-terminated).
Uri parse(const std::string& text)
{
    Uri u(p11_kit_uri_new());
    if (!u || p11_kit_uri_parse(text.c_str(), P11_KIT_URI_FOR_ANY, u.get()) != P11_KIT_URI_OK)
        return nullptr;
    return u;
}

std::optional<std::string> pin_of(const Uri& u)
{
    const char* v = p11_kit_uri_get_pin_value(u.get());
    return v ? std::optional<std::string>(v) : std::nullopt;
}

std::string format_without_pin(const Uri& u)
{
    p11_kit_uri_set_pin_value(u.get(), nullptr);
    p11_kit_uri_set_pin_source(u.get(), nullptr);
    char* s = nullptr;
    if (p11_kit_uri_format(u.get(), P11_KIT_URI_FOR_ANY, &s) != P11_KIT_URI_OK || !s)
        return {};
    std::string out(s);
    std::free(s);
    return out;
}

std::string percent(const std::string& s, bool upper, bool keep_unreserved)
{
    static const char* hex_u = "0123456789ABCDEF";
    static const char* hex_l = "0123456789abcdef";
    const char* hex = upper ? hex_u : hex_l;
    std::string out;
    for (unsigned char c : s) {
        if (keep_unreserved && (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')) {
            out += static_cast<char>(c);
            continue;
        }
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

bool all_one_byte(const std::string& s) { return s.find_first_not_of(s[0]) == std::string::npos; }

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string input(reinterpret_cast<const char*>(data), size);
    std::string error = mgs::pkcs11::url_syntax_error(input);
    std::string redacted = mgs::pkcs11::redact_url(input);
    std::optional<std::string> module = mgs::pkcs11::url_module_path(input);
    std::optional<std::string> source = mgs::pkcs11::url_pin_source(input);
    (void)mgs::pkcs11::is_pkcs11_url(input);

    Uri uri = parse(input);
    if ((uri != nullptr) != error.empty())
        std::abort(); // the syntax check is p11-kit's
    if (!uri) {
        if (module || source || redacted.find("(an invalid URL") == std::string::npos)
            std::abort();
        return 0;
    }
    if (redacted.rfind("pkcs11:", 0) != 0)
        std::abort();
    std::optional<std::string> pin = pin_of(uri);
    if (source && redacted.find("pin-source=***") == std::string::npos)
        std::abort();
    if (!pin)
        return 0;
    if (redacted.find("pin-value=***") == std::string::npos)
        std::abort();
    if (pin->size() < 4)
        return 0;

    // Parsed again: no pin-value but the marker, no pin-source but its marker.
    if (redacted.find("could not be formatted") == std::string::npos) {
        Uri again = parse(redacted);
        if (!again)
            std::abort();
        std::optional<std::string> pin2 = pin_of(again);
        if (pin2 && *pin2 != "***")
            std::abort();
        const char* source2 = p11_kit_uri_get_pin_source(again.get());
        if (source2 && std::string(source2) != "***")
            std::abort();
    }

    if (pin->size() < 6 || all_one_byte(*pin))
        return 0;
    // The URL without the pin, as p11-kit formats it: text it still holds
    // (the same bytes given as another attribute) is not the pin's leak.
    std::string rest = format_without_pin(uri);
    // Nor are the markers, with the '?' or '&' before them ("pin-value=***"
    // holds "pin-val", "pkcs11:?pin-value=***" holds "pkcs11:?"): the text
    // around them is searched piece by piece.
    std::vector<std::string> pieces{redacted};
    for (std::string marker : {"?pin-value=***", "&pin-value=***", "?pin-source=***", "&pin-source=***"}) {
        std::vector<std::string> next;
        for (const std::string& piece : pieces) {
            std::size_t from = 0;
            for (std::size_t at; (at = piece.find(marker, from)) != std::string::npos; from = at + marker.size())
                next.push_back(piece.substr(from, at - from));
            next.push_back(piece.substr(from));
        }
        pieces = std::move(next);
    }
    for (const std::string& form : {*pin, percent(*pin, true, false), percent(*pin, false, false),
                                    percent(*pin, true, true), percent(*pin, false, true)}) {
        if (rest.find(form) != std::string::npos)
            continue;
        for (const std::string& piece : pieces)
            if (piece.find(form) != std::string::npos)
                std::abort();
    }
    return 0;
}

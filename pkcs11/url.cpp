#include "pkcs11/url.h"

#include <p11-kit/uri.h>

#include <cstdlib>
#include <memory>

namespace mgs::pkcs11 {

namespace {

struct UriFree {
    void operator()(P11KitUri* u) const { p11_kit_uri_free(u); }
};
using UriHandle = std::unique_ptr<P11KitUri, UriFree>;

struct Parsed {
    UriHandle uri;
    int rc = P11_KIT_URI_NO_MEMORY;
};

Parsed parse(std::string_view url)
{
    Parsed p{UriHandle(p11_kit_uri_new())};
    if (!p.uri)
        return p;
    std::string text(url); // p11-kit wants a NUL-terminated string
    p.rc = p11_kit_uri_parse(text.c_str(), P11_KIT_URI_FOR_ANY, p.uri.get());
    // `text` may hold a PIN: wipe it before it is freed.
    for (char& ch : text)
        *static_cast<volatile char*>(&ch) = 0;
    return p;
}

std::optional<std::string> attribute(std::string_view url, const char* (*get)(const P11KitUri*))
{
    Parsed p = parse(url);
    if (p.rc != P11_KIT_URI_OK)
        return std::nullopt;
    const char* value = get(p.uri.get());
    return value ? std::optional<std::string>(value) : std::nullopt;
}

} // namespace

bool is_pkcs11_url(std::string_view reference) { return reference.starts_with("pkcs11:"); }

std::string url_syntax_error(std::string_view url)
{
    Parsed p = parse(url);
    if (p.rc == P11_KIT_URI_OK)
        return {};
    const char* why = p11_kit_uri_message(p.rc);
    return why ? why : "not a valid pkcs11: URL";
}

std::string redact_url(std::string_view url)
{
    Parsed p = parse(url);
    if (p.rc != P11_KIT_URI_OK) {
        const char* why = p11_kit_uri_message(p.rc);
        return std::string("pkcs11:(an invalid URL: ") + (why ? why : "unparsable") + ")";
    }
    // p11-kit frees (does not wipe) its copies of the pins; they live only
    // for this call, in the process that holds the URL anyway.
    bool had_pin = p11_kit_uri_get_pin_value(p.uri.get()) != nullptr;
    bool had_source = p11_kit_uri_get_pin_source(p.uri.get()) != nullptr;
    p11_kit_uri_set_pin_value(p.uri.get(), nullptr);
    p11_kit_uri_set_pin_source(p.uri.get(), nullptr);
    char* formatted = nullptr;
    if (p11_kit_uri_format(p.uri.get(), P11_KIT_URI_FOR_ANY, &formatted) != P11_KIT_URI_OK || !formatted)
        return "pkcs11:(a URL that could not be formatted)";
    std::string out(formatted);
    std::free(formatted);
    for (const char* marker : {had_pin ? "pin-value=***" : nullptr, had_source ? "pin-source=***" : nullptr})
        if (marker)
            out += (out.find('?') == std::string::npos ? "?" : "&") + std::string(marker);
    return out;
}

std::optional<std::string> url_module_path(std::string_view url) { return attribute(url, p11_kit_uri_get_module_path); }

std::optional<std::string> url_pin_source(std::string_view url) { return attribute(url, p11_kit_uri_get_pin_source); }

std::optional<std::string> url_object_label(std::string_view url)
{
    Parsed p = parse(url);
    if (p.rc != P11_KIT_URI_OK)
        return std::nullopt;
    CK_ATTRIBUTE_PTR a = p11_kit_uri_get_attribute(p.uri.get(), CKA_LABEL);
    if (!a || !a->pValue)
        return std::nullopt;
    return std::string(static_cast<const char*>(a->pValue), a->ulValueLen);
}

} // namespace mgs::pkcs11

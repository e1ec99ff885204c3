#include "tools/gnutls-keystore/key_opening.h"

#include "keystore/error.h"
#include "keystore/file_signer.h"
#include "keystore/secret_source.h"
#include "pkcs11/token_signer.h"
#include "pkcs11/url.h"
#include "tpm/tpm_signer.h"

#include <algorithm>
#include <cstdio>

namespace mgs::tool {

namespace {

Secret secret_of(const std::optional<Secret>& value, const std::optional<std::string>& source,
                 const char* directive)
{
    if (value)
        return *value;
    if (!source)
        return Secret();
    try {
        return read_secret_source(*source);
    } catch (const Error& e) {
        throw Error(std::string(directive) + ": " + e.what());
    }
}

} // namespace

KeyOpener::KeyOpener(const Options& options) : options_(options)
{
    registry_.add(std::make_unique<pkcs11::Pkcs11KeyBackend>(providers_));
    registry_.add(std::make_unique<tpm::TpmKeyBackend>());
    registry_.add(std::make_unique<FileKeyBackend>());
}

KeyOptions KeyOpener::key_options() const
{
    KeyOptions k;
    k.pin = secret_of(options_.pin, options_.pin_source, "GnuTLSPINSource");
    k.srk_pin = secret_of(options_.srk_pin, options_.srk_pin_source, "GnuTLSSRKPINSource");
    k.tpm_tcti = options_.tcti;
    k.rsa_engine = options_.rsa;
    return k;
}

void KeyOpener::load_modules(bool always)
{
    std::vector<std::string> modules = options_.modules;
    bool pkcs11 = always || !modules.empty();
    for (const std::string* ref : {&options_.key, options_.cert ? &*options_.cert : nullptr}) {
        if (!ref || ref->empty() || !pkcs11::is_pkcs11_url(*ref))
            continue;
        pkcs11 = true;
        if (std::string msg = pkcs11::url_syntax_error(*ref); !msg.empty())
            throw Error(pkcs11::redact_url(*ref) + ": " + msg);
        if (auto path = pkcs11::url_module_path(*ref); path && !path->empty() &&
                                                      std::find(modules.begin(), modules.end(), *path) == modules.end())
            modules.push_back(*path);
    }
    if (pkcs11) {
        try {
            providers_.load(modules);
        } catch (const Error& e) {
            throw Error(std::string("GnuTLSPKCS11Module: ") + e.what());
        }
    }
}

std::shared_ptr<Signer> KeyOpener::open_key()
{
    load_modules(false);
    KeyOptions k = key_options();
    k.notice = [](const std::string& text) { std::fprintf(stderr, "warning: %s\n", text.c_str()); };
    return registry_.open(options_.key, k);
}

std::shared_ptr<Signer> KeyOpener::open_key_or_report()
{
    try {
        return open_key();
    } catch (const Error& e) {
        std::fprintf(stderr, "gnutls-keystore: GnuTLSKeyFile: %s\n", e.what());
        return nullptr;
    }
}

} // namespace mgs::tool

#include "httpd/vhost_setup.h"

#include "httpd/errors.h"
#include "httpd/server_config.h"
#include "keystore/file_backend.h"
#include "keystore/secret_source.h"

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

namespace {

// A problem in one server's configuration, tied to the directive to fix.
struct SetupError {
    std::string directive;
    std::string message;
};

KeyRegistry make_registry()
{
    KeyRegistry r;
    // Hardware backends claim their reference forms first; files take the rest.
    r.add(std::make_unique<FileKeyBackend>());
    return r;
}

Secret resolve_secret(const std::optional<Secret>& value, const std::optional<std::string>& source,
                      const char* source_directive)
{
    if (value)
        return *value;
    if (!source)
        return {};
    try {
        return read_secret_source(*source);
    } catch (const Error& e) {
        throw SetupError{source_directive, e.what()};
    }
}

std::unique_ptr<VhostTls> build(const ServerConfig& sc)
{
    if (!sc.cert_file)
        throw SetupError{"GnuTLSCertificateFile", "GnuTLSEnable is on but no certificate is configured"};
    if (!sc.key_file)
        throw SetupError{"GnuTLSKeyFile", "GnuTLSEnable is on but no private key is configured"};

    KeyOptions options;
    options.pin = resolve_secret(sc.pin, sc.pin_source, "GnuTLSPINSource");
    options.srk_pin = resolve_secret(sc.srk_pin, sc.srk_pin_source, "GnuTLSSRKPINSource");

    std::optional<CertificateChain> chain;
    try {
        chain = CertificateChain::from_file(*sc.cert_file);
    } catch (const Error& e) {
        throw SetupError{"GnuTLSCertificateFile", e.what()};
    }

    std::shared_ptr<Signer> signer;
    try {
        signer = key_registry().open(*sc.key_file, options);
    } catch (const Error& e) {
        throw SetupError{"GnuTLSKeyFile", e.what()};
    }

    auto tls = std::make_unique<VhostTls>();
    try {
        tls->credentials = std::make_unique<ServerCredentials>(std::move(*chain), signer);
    } catch (const KeyMismatchError& e) {
        throw SetupError{"GnuTLSKeyFile", "the private key " + signer->describe() +
                                              " does not match the certificate in " + *sc.cert_file +
                                              " (subject " + e.certificate_subject() + ")"};
    } catch (const Error& e) {
        throw SetupError{"GnuTLSKeyFile", e.what()};
    }

    try {
        tls->priority = compile_priorities(sc.priorities.value_or(default_priorities));
    } catch (const Error& e) {
        throw SetupError{"GnuTLSPriorities", e.what()};
    }
    tls->settings = TlsSettings{tls->priority.get(), tls->credentials.get()};
    return tls;
}

} // namespace

const KeyRegistry& key_registry()
{
    static const KeyRegistry registry = make_registry();
    return registry;
}

int check_config(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* base)
{
    bool ok = true;
    for (server_rec* s = base; s; s = s->next) {
        ServerConfig* sc = server_config(s);
        sc->tls.reset();
        if (!sc->is_enabled())
            continue;
        try {
            sc->tls = build(*sc);
        } catch (const SetupError& e) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_gnutls: %s: %s: %s", server_label(s).c_str(),
                         e.directive.c_str(), e.message.c_str());
            ok = false;
        } catch (const std::exception& e) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_gnutls: %s: %s", server_label(s).c_str(), e.what());
            ok = false;
        }
    }
    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

} // namespace mgs::httpd

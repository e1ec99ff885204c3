#include "httpd/vhost_setup.h"

#include "httpd/errors.h"
#include "httpd/key_report.h"
#include "httpd/module_state.h"
#include "httpd/ocsp_stapling.h"
#include "httpd/server_config.h"
#include "keystore/file_io.h"
#include "keystore/secret_source.h"
#include "pkcs11/providers.h"
#include "pkcs11/token_certificate.h"
#include "pkcs11/token_signer.h"
#include "src/vhost_identity.h"
#include "tpm/key_agent.h"
#include "pkcs11/url.h"

#include <algorithm>

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

namespace {

// A problem in one server's configuration, tied to the directive to fix.
struct SetupError {
    std::string directive;
    std::string message;
};

Secret resolve_secret(const ServerConfig& sc, const std::optional<Secret>& value,
                      const std::optional<std::string>& source, const char* source_directive)
{
    if (value)
        return *value;
    if (!source)
        return {};
    try {
        return sc.state->secret_sources->read(*source);
    } catch (const Error& e) {
        throw SetupError{source_directive, e.what()};
    }
}

bool can_sign_tls13(const Signer& signer)
{
    if (signer.algorithm() != GNUTLS_PK_RSA)
        return true;
    auto schemes = signer.schemes();
    return std::find(schemes.begin(), schemes.end(), GNUTLS_SIGN_RSA_PSS_RSAE_SHA256) != schemes.end();
}

bool uses_pkcs11(server_rec* base)
{
    for (server_rec* s = base; s; s = s->next) {
        const ServerConfig* sc = server_config(s);
        if (sc->is_enabled() && ((sc->key_file && pkcs11::is_pkcs11_url(*sc->key_file)) ||
                                 (sc->cert_file && pkcs11::is_pkcs11_url(*sc->cert_file))))
            return true;
    }
    return false;
}

// GnuTLSKeyIsolation's default, by measurement (docs/performance.md, "Key
// isolation"): a signature through the agent adds one round trip on a
// local socket, next to nothing beside a token's C_Sign, but a real share
// of a fast ECDSA or RSA signature in the worker's own memory.
// The default is on for token keys, unless the server's priorities allow
// TLS 1.2's RSA key exchange: an RSA key must then decrypt, which the agent
// does not, so such a configuration keeps working as before.
bool isolated(const ServerConfig& sc, std::string_view backend, bool rsa_key_exchange)
{
    if (sc.key_isolation)
        return *sc.key_isolation;
    return backend == "pkcs11" && !rsa_key_exchange;
}

std::string base_priorities(const ServerConfig& sc, bool srp)
{
    return sc.priorities.value_or(srp ? default_srp_priorities : default_priorities);
}

// Where a key signs: TPM keys always in the key agent (tpm_signer.h); key
// files and PKCS#11 keys there when GnuTLSKeyIsolation says so, else in
// the workers. An isolated key is checked in a child process and opened by
// the agent alone: no key, module, login or PIN in this process's memory,
// so none in the workers (or any other process) it forks.
std::shared_ptr<Signer> open_key(const ServerConfig& sc, const std::string& reference, const KeyOptions& options)
{
    ModuleState& state = *sc.state;
    const KeyBackend* backend = state.keys.backend_for(reference);
    const std::string_view name = backend ? backend->name() : "file";
    if (name == "tpm2" || !isolated(sc, name, options.rsa_decrypts)) {
        std::shared_ptr<Signer> key = state.keys.open(reference, options);
        if (key->backend() == "pkcs11")
            state.workers_sign_with_pkcs11 = true;
        return key;
    }
    KeyOptions kept = options;
    if (name == "pkcs11")
        kept.pin = pkcs11::token_pin(reference, options); // a URL's pin-source, read with this load's sources
    std::function<void()> prepare;
    std::string modules;
    if (name == "pkcs11") {
        prepare = [&state] { state.pkcs11_modules.open_in_child(); };
        for (const auto& m : state.pkcs11_modules.modules())
            modules += m + '\n';
    }
    std::shared_ptr<Signer> key = state.key_agent.host_by_reference(
        reference, kept, prepare,
        [&state](const std::string& ref, const KeyOptions& o) { return state.keys.open(ref, o); }, modules);
    if (key->algorithm() == GNUTLS_PK_RSA && options.rsa_decrypts)
        throw Error(key->describe() +
                    ": an isolated RSA key cannot serve TLS 1.2's RSA key exchange, which GnuTLSPriorities "
                    "allows: the key agent signs, it does not decrypt. Remove RSA key exchange (-RSA) or set "
                    "GnuTLSKeyIsolation off");
    return key;
}

// Whether this process loads the PKCS#11 modules: for certificates on
// tokens and for token keys that sign in the workers.
bool parent_loads_pkcs11(server_rec* base)
{
    for (server_rec* s = base; s; s = s->next) {
        const ServerConfig* sc = server_config(s);
        if (sc->cert_file && pkcs11::is_pkcs11_url(*sc->cert_file))
            return true;
        const bool srp = sc->srp_passwd_file || sc->srp_conf_file;
        if (sc->key_file && pkcs11::is_pkcs11_url(*sc->key_file) &&
            !isolated(*sc, "pkcs11", allows_rsa_key_exchange(base_priorities(*sc, srp))))
            return true;
        if (sc->proxy_key_file && pkcs11::is_pkcs11_url(*sc->proxy_key_file) && !isolated(*sc, "pkcs11", false))
            return true;
    }
    return false;
}

KeyOptions key_options(const server_rec* s, const ServerConfig& sc)
{
    KeyOptions options;
    options.pin = resolve_secret(sc, sc.pin, sc.pin_source, "GnuTLSPINSource");
    options.srk_pin = resolve_secret(sc, sc.srk_pin, sc.srk_pin_source, "GnuTLSSRKPINSource");
    options.secret_sources = sc.state->secret_sources;
    options.tpm_tcti = sc.state->tpm_tcti;
    options.rsa_engine = sc.rsa_engine.value_or(RsaEngine::automatic);
    options.notice = [s](const std::string& text) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_gnutls: " MGSLOGNO(01006) "%s: %s",
                     server_label(s).c_str(), text.c_str());
    };
    return options;
}

std::unique_ptr<ServerCredentials> build_x509(const server_rec* s, const ServerConfig& sc, bool rsa_key_exchange)
{
    if (!sc.key_file)
        throw SetupError{"GnuTLSKeyFile", "GnuTLSEnable is on but no private key is configured"};

    KeyOptions options = key_options(s, sc);
    options.rsa_decrypts = rsa_key_exchange;

    std::optional<CertificateChain> chain;
    try {
        chain = pkcs11::is_pkcs11_url(*sc.cert_file)
                    ? CertificateChain::from_certificates(pkcs11::load_token_certificates(*sc.cert_file),
                                                          pkcs11::redact_url(*sc.cert_file))
                    : CertificateChain::from_file(*sc.cert_file);
    } catch (const Error& e) {
        throw SetupError{"GnuTLSCertificateFile", e.what()};
    }

    std::shared_ptr<Signer> signer;
    try {
        signer = open_key(sc, *sc.key_file, options);
    } catch (const Error& e) {
        throw SetupError{"GnuTLSKeyFile", e.what()};
    }

    // The chain's source is the file, or the token URL with any PIN removed.
    const std::string cert_source = chain->source();
    std::unique_ptr<ServerCredentials> credentials;
    try {
        credentials = std::make_unique<ServerCredentials>(std::move(*chain), signer);
    } catch (const KeyMismatchError& e) {
        throw SetupError{"GnuTLSKeyFile", "the private key " + signer->describe() +
                                              " does not match the certificate in " + cert_source +
                                              " (subject " + e.certificate_subject() + ")"};
    } catch (const Error& e) {
        throw SetupError{"GnuTLSKeyFile", e.what()};
    }

    if (sc.dh_file) {
        try {
            credentials->use_dh_params(read_file(*sc.dh_file), *sc.dh_file);
        } catch (const Error& e) {
            throw SetupError{"GnuTLSDHFile", e.what()};
        }
    }
    if (sc.client_ca_file) {
        try {
            credentials->trust_client_cas(*sc.client_ca_file);
        } catch (const Error& e) {
            throw SetupError{"GnuTLSClientCAFile", e.what()};
        }
    }
    return credentials;
}

std::unique_ptr<SrpCredentials> build_srp(const ServerConfig& sc)
{
    if (!sc.srp_passwd_file && !sc.srp_conf_file)
        return nullptr;
    if (!sc.srp_passwd_file)
        throw SetupError{"GnuTLSSRPPasswdFile", "GnuTLSSRPPasswdConfFile is set but no password file is"};
    if (!sc.srp_conf_file)
        throw SetupError{"GnuTLSSRPPasswdConfFile", "GnuTLSSRPPasswdFile is set but no parameters file is"};
    try {
        return std::make_unique<SrpCredentials>(*sc.srp_passwd_file, *sc.srp_conf_file);
    } catch (const Error& e) {
        throw SetupError{"GnuTLSSRPPasswdFile", e.what()};
    }
}

std::unique_ptr<ProxyTls> build_proxy(const server_rec* s, const ServerConfig& sc)
{
    std::optional<CertificateChain> chain;
    std::shared_ptr<Signer> signer;
    if (sc.proxy_cert_file || sc.proxy_key_file) {
        if (!sc.proxy_cert_file)
            throw SetupError{"GnuTLSProxyCertificateFile", "GnuTLSProxyKeyFile is set but no certificate is"};
        if (!sc.proxy_key_file)
            throw SetupError{"GnuTLSProxyKeyFile", "GnuTLSProxyCertificateFile is set but no key is"};
        try {
            chain = CertificateChain::from_file(*sc.proxy_cert_file);
        } catch (const Error& e) {
            throw SetupError{"GnuTLSProxyCertificateFile", e.what()};
        }
        KeyOptions options = key_options(s, sc);
        try {
            signer = open_key(sc, *sc.proxy_key_file, options);
        } catch (const Error& e) {
            throw SetupError{"GnuTLSProxyKeyFile", e.what()};
        }
    }
    // What back-end sessions are bound to: the proxy settings, the client
    // certificate and key by content, the CA and CRL files by content.
    IdentityDigest identity;
    if (chain)
        identity.add_chain(*chain).add_key(*signer, *sc.proxy_key_file);
    identity.add("proxy-ca-file", sc.proxy_ca_file.value_or("")).add("proxy-crl-file", sc.proxy_crl_file.value_or(""));
    for (const auto* file : {&sc.proxy_ca_file, &sc.proxy_crl_file})
        if (*file) {
            try {
                identity.add("content", read_file(**file));
            } catch (const Error& e) {
                throw SetupError{file == &sc.proxy_ca_file ? "GnuTLSProxyCAFile" : "GnuTLSProxyCRLFile", e.what()};
            }
        }
    auto proxy = std::make_unique<ProxyTls>();
    try {
        proxy->credentials = std::make_unique<ClientCredentials>(std::move(chain), signer);
    } catch (const KeyMismatchError& e) {
        throw SetupError{"GnuTLSProxyKeyFile", "the private key " + signer->describe() +
                                                   " does not match the certificate in " + *sc.proxy_cert_file +
                                                   " (subject " + e.certificate_subject() + ")"};
    } catch (const Error& e) {
        throw SetupError{"GnuTLSProxyKeyFile", e.what()};
    }
    try {
        if (sc.proxy_ca_file)
            proxy->credentials->trust_cas(*sc.proxy_ca_file);
    } catch (const Error& e) {
        throw SetupError{"GnuTLSProxyCAFile", e.what()};
    }
    try {
        if (sc.proxy_crl_file)
            proxy->credentials->add_crls(*sc.proxy_crl_file);
    } catch (const Error& e) {
        throw SetupError{"GnuTLSProxyCRLFile", e.what()};
    }
    std::string priorities = sc.proxy_priorities.value_or(sc.priorities.value_or(default_proxy_priorities));
    try {
        proxy->priority = compile_priorities(priorities);
    } catch (const Error& e) {
        throw SetupError{"GnuTLSProxyPriorities", e.what()};
    }
    proxy->session_context = identity.add("proxy-priorities", priorities).hex().substr(0, 32);
    proxy->cache_timeout = std::chrono::seconds(sc.cache_timeout.value_or(defaults::cache_timeout));
    return proxy;
}

// OCSP stapling: responses from GnuTLSOCSPResponseFile, or fetched from the
// certificate's responder (ocsp_stapling.h) when no file is given for the
// server certificate ("" in its place asks for fetching).
void set_up_stapling(server_rec* s, ServerConfig& sc, ServerCredentials& credentials)
{
    sc.ocsp.reset();
    if (!sc.ocsp_stapling.value_or(true))
        return;
    bool fetch_leaf = true;
    if (sc.ocsp_response_files) {
        fetch_leaf = sc.ocsp_response_files->empty() || sc.ocsp_response_files->front().empty();
        for (const auto& file : *sc.ocsp_response_files) {
            if (file.empty())
                continue;
            try {
                credentials.staple_ocsp_response(read_file(file), file);
            } catch (const Error& e) {
                throw SetupError{"GnuTLSOCSPResponseFile", e.what()};
            }
        }
    }
    if (!fetch_leaf)
        return;
    try {
        sc.ocsp = make_ocsp_stapler(s, sc, credentials, sc.ocsp_stapling.value_or(false));
    } catch (const Error& e) {
        throw SetupError{"GnuTLSOCSPStapling", e.what()};
    }
}

// GnuTLS ignores a URL's module-path: load the modules URLs name, together
// with those of GnuTLSPKCS11Module. (Naming any module this way replaces
// p11-kit's configured modules, as GnuTLSPKCS11Module does.)
std::vector<std::string> with_url_modules(server_rec* base, std::vector<std::string> modules)
{
    std::vector<std::string> named;
    for (server_rec* s = base; s; s = s->next) {
        const ServerConfig* sc = server_config(s);
        for (const auto* ref : {&sc->key_file, &sc->cert_file, &sc->proxy_key_file})
            if (*ref && pkcs11::is_pkcs11_url(**ref))
                if (auto path = pkcs11::url_module_path(**ref); path && !path->empty())
                    named.push_back(*path);
    }
    if (modules.empty() && named.empty())
        return modules;
    for (auto& p : named)
        if (std::find(modules.begin(), modules.end(), p) == modules.end())
            modules.push_back(p);
    return modules;
}

// Everything that decides who may connect to this server and how
// (mod_ssl's ssl_server_compatible() compares the same things), by
// reference and by content: two servers with equal identities may share
// connections. The client CA file holds the CRLs too.
std::string identity_of(const ServerConfig& sc, const VhostTls& tls, const std::string& priorities)
{
    IdentityDigest d;
    if (tls.credentials)
        d.add_credentials(*tls.credentials, *sc.key_file);
    d.add("priorities", priorities);
    d.add("dh-file", sc.dh_file.value_or(""));
    d.add("client-verify", std::to_string(static_cast<int>(tls.settings.client_auth.mode)));
    d.add("client-key-purpose", tls.settings.client_auth.purpose_oid);
    d.add("client-ca-file", sc.client_ca_file.value_or(""));
    if (sc.client_ca_file) {
        try {
            d.add("client-ca", read_file(*sc.client_ca_file));
        } catch (const Error& e) {
            throw SetupError{"GnuTLSClientCAFile", e.what()};
        }
    }
    d.add("srp-passwd-file", sc.srp_passwd_file.value_or(""));
    d.add("srp-conf-file", sc.srp_conf_file.value_or(""));
    return d.hex();
}

std::unique_ptr<VhostTls> build(server_rec* s, ServerConfig& sc, const TicketKey* master_ticket_key)
{
    auto tls = std::make_unique<VhostTls>();
    tls->srp = build_srp(sc);
    std::string priorities = base_priorities(sc, tls->srp != nullptr);
    if (sc.cert_file)
        tls->credentials = build_x509(s, sc, allows_rsa_key_exchange(priorities));
    else if (!tls->srp)
        throw SetupError{"GnuTLSCertificateFile",
                         "GnuTLSEnable is on but no certificate (or SRP password file) is configured"};

    if (tls->credentials)
        set_up_stapling(s, sc, *tls->credentials);

    if (tls->srp && priorities.find("SRP") == std::string::npos)
        priorities += ":+SRP:+SRP-RSA:+SRP-DSS"; // as the README's SRP + X.509 example expects
    if (tls->credentials && !can_sign_tls13(tls->credentials->signer())) {
        // TLS 1.3 needs RSA-PSS; a token without it still serves TLS 1.2.
        priorities += ":-VERS-TLS1.3";
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "mod_gnutls: " MGSLOGNO(01002) "%s: GnuTLSKeyFile %s cannot make RSA-PSS signatures (no CKM_RSA_PKCS_PSS); "
                     "TLS 1.3 is off for this virtual host",
                     server_label(s).c_str(), tls->credentials->signer().describe().c_str());
    }
    try {
        tls->priority = compile_priorities(priorities);
    } catch (const Error& e) {
        throw SetupError{"GnuTLSPriorities", e.what()};
    }
    tls->settings.priority = tls->priority.get();
    tls->settings.credentials = tls->credentials.get();
    tls->settings.srp = tls->srp.get();
    tls->settings.client_auth.mode = sc.client_verify.value_or(ClientVerify::ignore);
    tls->settings.client_auth.purpose_oid = sc.client_purpose.value_or(tls_client_auth_oid);
    tls->identity = identity_of(sc, *tls, priorities);
    // 128 bits keep cache keys short (memcached takes 250 bytes, hex-encoded).
    tls->session_context = IdentityDigest()
                               .add("server-name", s->server_hostname ? s->server_hostname : "")
                               .add("identity", tls->identity)
                               .hex()
                               .substr(0, 32);
    if (sc.session_tickets.value_or(false) && master_ticket_key) {
        tls->ticket_key = std::make_unique<TicketKey>(*master_ticket_key, tls->session_context);
        tls->settings.ticket_key = tls->ticket_key.get();
    }
    tls->cache_timeout = std::chrono::seconds(sc.cache_timeout.value_or(defaults::cache_timeout));
    return tls;
}

} // namespace

int check_config(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* base)
{
    ModuleState& state = module_state(base);
    const ServerConfig* global = server_config(base);
    if (!global->pkcs11_modules.empty() || uses_pkcs11(base)) {
        try {
            if (parent_loads_pkcs11(base)) {
                state.pkcs11_modules.load(with_url_modules(base, global->pkcs11_modules));
            } else {
                state.pkcs11_modules.configure(with_url_modules(base, global->pkcs11_modules));
                state.pkcs11_modules.check_in_child();
            }
        } catch (const Error& e) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, base, "mod_gnutls: " MGSLOGNO(01001) "GnuTLSPKCS11Module: %s", e.what());
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    } else {
        state.pkcs11_modules.unload();
    }
    state.tpm_tcti = global->tpm_tcti.value_or("");
    // One ticket master key per configuration load, shared by all children.
    for (server_rec* s = base; s; s = s->next)
        if (server_config(s)->is_enabled() && server_config(s)->session_tickets.value_or(false)) {
            try {
                state.ticket_master = std::make_unique<TicketKey>();
            } catch (const Error& e) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, base, "mod_gnutls: " MGSLOGNO(01005) "GnuTLSSessionTickets: %s",
                             e.what());
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            break;
        }
    bool ok = true;
    for (server_rec* s = base; s; s = s->next) {
        ServerConfig* sc = server_config(s);
        sc->tls.reset();
        sc->proxy.reset();
        if (!sc->is_enabled() && !sc->proxy_enabled.value_or(false))
            continue;
        try {
            if (sc->proxy_enabled.value_or(false))
                sc->proxy = build_proxy(s, *sc);
            if (sc->is_enabled())
                sc->tls = build(s, *sc, state.ticket_master.get());
        } catch (const SetupError& e) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_gnutls: " MGSLOGNO(01003) "%s: %s: %s", server_label(s).c_str(),
                         e.directive.c_str(), e.message.c_str());
            ok = false;
        } catch (const std::exception& e) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_gnutls: " MGSLOGNO(01004) "%s: %s", server_label(s).c_str(), e.what());
            ok = false;
        }
    }
    // apachectl -t -D GNUTLS_KEY_REPORT (gnutls-keystore check-config).
    if (ok && ap_exists_config_define(key_report_define))
        ok = report_keys(base);
    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

} // namespace mgs::httpd

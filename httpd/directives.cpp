// The directive table and its handlers. Handlers check syntax only (what can
// be judged from the line itself, so the error carries the line number);
// files, keys and PINs are checked for the whole server in vhost_setup.
#include "httpd/directives.h"

#include "httpd/errors.h"
#include "httpd/module_state.h"
#include "httpd/server_config.h"
#include "httpd/session_cache.h"

#include <ap_provider.h>
#include <ap_socache.h>
#include "keystore/secret_source.h"
#include "pkcs11/url.h"

#include <gnutls/gnutls.h>

#include <cstring>
#include <string>

namespace mgs::httpd {

namespace {

ServerConfig* config_of(cmd_parms* cmd) { return server_config(cmd->server); }

const char* fail(cmd_parms* cmd, const std::string& message)
{
    std::string where = cmd->server->is_virtual ? " (in " + server_label(cmd->server) + ")" : std::string();
    return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", message.c_str(), where.c_str(), nullptr);
}

// File paths are relative to ServerRoot, as with every Apache directive;
// references a key backend takes by scheme (pkcs11:, handle:) pass
// through untouched.
std::string server_root_path(cmd_parms* cmd, const char* arg)
{
    const char* path = ap_server_root_relative(cmd->pool, arg);
    return path ? path : arg;
}

std::string key_or_file_reference(cmd_parms* cmd, const char* arg)
{
    return module_state(cmd->server).keys.names_a_file(arg) ? server_root_path(cmd, arg) : std::string(arg);
}

// Generic setters: one per kind of value, the member as a template
// argument, so each directive is one line in the table below.
using Flag = std::optional<bool> ServerConfig::*;
using Text = std::optional<std::string> ServerConfig::*;
using Seconds = std::optional<int> ServerConfig::*;

// On or Off, with the value and the virtual host in the error (Apache's
// FLAG handling would name neither).
template <Flag Member>
const char* set_flag(cmd_parms* cmd, void*, const char* arg)
{
    if (!strcasecmp(arg, "on"))
        config_of(cmd)->*Member = true;
    else if (!strcasecmp(arg, "off"))
        config_of(cmd)->*Member = false;
    else
        return fail(cmd, std::string("must be On or Off, not '") + arg + "'");
    return nullptr;
}

// A file, relative to ServerRoot.
template <Text Member>
const char* set_path(cmd_parms* cmd, void*, const char* arg)
{
    config_of(cmd)->*Member = server_root_path(cmd, arg);
    return nullptr;
}

// Apache's copies of a secret directive value (the word, the directive's
// arguments in the configuration tree) live in pconf, which every child
// inherits: wiped once the module has its own copy. (Apache's read buffer
// of the configuration file is beyond reach: docs/directives.md says to
// prefer GnuTLSPINSource.)
void wipe_config_text(const char* text)
{
    if (text)
        gnutls_memset(const_cast<char*>(text), 0, std::strlen(text));
}

// A key or certificate: a file, or a reference a key backend takes by scheme.
template <Text Member>
const char* set_key_reference(cmd_parms* cmd, void*, const char* arg)
{
    // A pkcs11: URL is checked here, by p11-kit's parser (the one GnuTLS
    // uses), so the error has the line number; the URL is not echoed, it
    // may hold a PIN.
    if (pkcs11::is_pkcs11_url(arg))
        if (std::string why = pkcs11::url_syntax_error(arg); !why.empty())
            return fail(cmd, "not a valid pkcs11: URL (RFC 7512): " + why);
    config_of(cmd)->*Member = key_or_file_reference(cmd, arg);
    // A pin-value in the URL is a PIN: Apache's copies go, as GnuTLSPIN's do.
    if (pkcs11::is_pkcs11_url(arg) && std::string_view(arg).find("pin-value") != std::string_view::npos) {
        wipe_config_text(arg);
        if (cmd->directive)
            wipe_config_text(cmd->directive->args);
    }
    return nullptr;
}

// Checked here so that the error carries the line number.
template <Text Member>
const char* set_priority_string(cmd_parms* cmd, void*, const char* arg)
{
    try {
        compile_priorities(arg);
    } catch (const Error& e) {
        return fail(cmd, e.what());
    }
    config_of(cmd)->*Member = arg;
    return nullptr;
}

template <Seconds Member, int Min = 0>
const char* set_seconds(cmd_parms* cmd, void*, const char* arg)
{
    std::string a(arg);
    if (a.empty() || a.size() > 9 || a.find_first_not_of("0123456789") != std::string::npos)
        return fail(cmd, std::string("must be a number of seconds, not '") + arg + "'");
    int value = std::stoi(a);
    if (value < Min)
        return fail(cmd, "must be at least " + std::to_string(Min) + " second" + (Min == 1 ? "" : "s"));
    config_of(cmd)->*Member = value;
    return nullptr;
}

// A timeout of 0 would make every fetch fail at once.
const char* set_socket_timeout(cmd_parms* cmd, void* dir, const char* arg)
{
    return set_seconds<&ServerConfig::ocsp_socket_timeout, 1>(cmd, dir, arg);
}

// A secret is given either directly or through a source, never both in one
// context.
struct SecretDirectives {
    std::optional<Secret> ServerConfig::*value;
    Text source;
    const char* value_name;
    const char* source_name;
};
constexpr SecretDirectives pin_directives{&ServerConfig::pin, &ServerConfig::pin_source, "GnuTLSPIN",
                                          "GnuTLSPINSource"};
constexpr SecretDirectives srk_pin_directives{&ServerConfig::srk_pin, &ServerConfig::srk_pin_source, "GnuTLSSRKPIN",
                                              "GnuTLSSRKPINSource"};

const char* conflict(cmd_parms* cmd, const char* other)
{
    return fail(cmd, std::string("cannot be combined with ") + other +
                         " in the same context; use one way to give the PIN");
}


template <const SecretDirectives& D>
const char* set_secret(cmd_parms* cmd, void*, const char* arg)
{
    ServerConfig* c = config_of(cmd);
    if (c->*D.source)
        return conflict(cmd, D.source_name);
    c->*D.value = Secret(arg);
    wipe_config_text(arg);
    if (cmd->directive)
        wipe_config_text(cmd->directive->args);
    return nullptr;
}

template <const SecretDirectives& D>
const char* set_secret_source(cmd_parms* cmd, void*, const char* arg)
{
    ServerConfig* c = config_of(cmd);
    if (c->*D.value)
        return conflict(cmd, D.value_name);
    try {
        check_secret_source_syntax(arg);
    } catch (const Error& e) {
        return fail(cmd, e.what());
    }
    c->*D.source = arg;
    return nullptr;
}

// off | on (16K) | SIZE in bytes, optionally with a K suffix.
const char* set_export_certificates(cmd_parms* cmd, void*, const char* arg)
{
    std::string a(arg);
    std::size_t bytes = 0;
    if (!strcasecmp(arg, "off")) {
        bytes = 0;
    } else if (!strcasecmp(arg, "on")) {
        bytes = 16 * 1024;
    } else {
        bool kib = !a.empty() && (a.back() == 'K' || a.back() == 'k');
        if (kib)
            a.pop_back();
        if (a.empty() || a.find_first_not_of("0123456789") != std::string::npos || a.size() > 9)
            return fail(cmd, std::string("must be off, on or a size in bytes (e.g. 8192 or 16K), not '") + arg +
                                 "'");
        bytes = std::stoul(a) * (kib ? 1024 : 1);
    }
    config_of(cmd)->export_certificates = bytes;
    return nullptr;
}

const char* set_rsa_signer(cmd_parms* cmd, void*, const char* arg)
{
    RsaEngine engine;
    if (!strcasecmp(arg, "auto"))
        engine = RsaEngine::automatic;
    else if (!strcasecmp(arg, "libcrypto"))
        engine = RsaEngine::libcrypto;
    else if (!strcasecmp(arg, "gnutls"))
        engine = RsaEngine::gnutls;
    else
        return fail(cmd, std::string("must be auto, libcrypto or gnutls, not '") + arg + "'");
    config_of(cmd)->rsa_engine = engine;
    return nullptr;
}

const char* set_key_isolation(cmd_parms* cmd, void*, const char* arg)
{
    if (!strcasecmp(arg, "on"))
        config_of(cmd)->key_isolation = true;
    else if (!strcasecmp(arg, "off"))
        config_of(cmd)->key_isolation = false;
    else
        return fail(cmd, std::string("must be on or off, not '") + arg + "'");
    return nullptr;
}

const char* set_client_verify(cmd_parms* cmd, void* dir, const char* arg)
{
    ClientVerify mode;
    if (!strcasecmp(arg, "ignore") || !strcasecmp(arg, "none"))
        mode = ClientVerify::ignore;
    else if (!strcasecmp(arg, "request") || !strcasecmp(arg, "optional"))
        mode = ClientVerify::request;
    else if (!strcasecmp(arg, "require"))
        mode = ClientVerify::require;
    else
        return fail(cmd, std::string("must be ignore, request or require, not '") + arg + "'");
    if (cmd->path) // <Directory>, <Location> or .htaccess: enforced per request
        static_cast<DirConfig*>(dir)->client_verify = mode;
    else
        config_of(cmd)->client_verify = mode;
    return nullptr;
}

const char* set_client_purpose(cmd_parms* cmd, void*, const char* arg)
{
    std::string oid(arg);
    if (oid.empty() || oid.find_first_not_of("0123456789.") != std::string::npos || oid.front() == '.' ||
        oid.back() == '.')
        return fail(cmd, "must be an OID in dotted form, e.g. 1.3.6.1.5.5.7.3.2, not '" + oid + "'");
    config_of(cmd)->client_purpose = oid;
    return nullptr;
}

const char* add_ocsp_response_file(cmd_parms* cmd, void*, const char* arg)
{
    auto& files = config_of(cmd)->ocsp_response_files;
    if (!files)
        files.emplace();
    files->push_back(*arg ? server_root_path(cmd, arg) : std::string());
    return nullptr;
}

const char* set_ocsp_cache(cmd_parms* cmd, void*, const char* arg)
{
    if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY))
        return err;
    std::string name = std::string(arg).substr(0, std::string(arg).find(':'));
    if (name != "none" && !ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name.c_str(), AP_SOCACHE_PROVIDER_VERSION))
        return fail(cmd, "no socache provider '" + name + "'; load mod_socache_" + name);
    config_of(cmd)->ocsp_cache = arg;
    return nullptr;
}

const char* add_pkcs11_module(cmd_parms* cmd, void*, const char* arg)
{
    if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY))
        return err;
    config_of(cmd)->pkcs11_modules.emplace_back(arg);
    return nullptr;
}

const char* set_tpm_tcti(cmd_parms* cmd, void*, const char* arg)
{
    if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY))
        return err;
    std::string v(arg);
    // tpm2-tss names: device, swtpm, mssim, tabrmd, cmd, libtpms, or a library path.
    if (v.empty())
        return fail(cmd, "needs a TCTI such as device:/dev/tpmrm0, swtpm:host=127.0.0.1,port=2321 or tabrmd");
    config_of(cmd)->tpm_tcti = v;
    return nullptr;
}

} // namespace

const command_rec directives[] = {
    AP_INIT_TAKE1("GnuTLSEnable", set_flag<&ServerConfig::enabled>, nullptr, RSRC_CONF,
                  "Whether this server speaks TLS: On or Off"),
    AP_INIT_TAKE1("GnuTLSCertificateFile", set_key_reference<&ServerConfig::cert_file>, nullptr, RSRC_CONF,
                  "PEM certificate chain (end entity first) of this server, or a pkcs11: URL"),
    AP_INIT_TAKE1("GnuTLSX509CertificateFile", set_key_reference<&ServerConfig::cert_file>, nullptr, RSRC_CONF,
                  "Old name of GnuTLSCertificateFile"),
    AP_INIT_TAKE1("GnuTLSKeyFile", set_key_reference<&ServerConfig::key_file>, nullptr, RSRC_CONF,
                  "Private key of this server: a key file, a pkcs11: URL or a TPM 2.0 key"),
    AP_INIT_TAKE1("GnuTLSX509KeyFile", set_key_reference<&ServerConfig::key_file>, nullptr, RSRC_CONF,
                  "Old name of GnuTLSKeyFile"),
    AP_INIT_TAKE1("GnuTLSPriorities", set_priority_string<&ServerConfig::priorities>, nullptr, RSRC_CONF,
                  "GnuTLS priority string (default: TLS 1.2/1.3, AEAD suites, server order; docs/directives.md)"),
    AP_INIT_TAKE1("GnuTLSDHFile", set_path<&ServerConfig::dh_file>, nullptr, RSRC_CONF,
                  "PKCS #3 PEM file with Diffie-Hellman parameters for DHE (default: GnuTLS's groups)"),
    AP_INIT_TAKE1("GnuTLSPIN", set_secret<pin_directives>, nullptr, RSRC_CONF,
                  "PIN of token objects, or passphrase of an encrypted key file"),
    AP_INIT_TAKE1("GnuTLSPINSource", set_secret_source<pin_directives>, nullptr, RSRC_CONF,
                  "Where the PIN comes from: file:PATH, exec:PROGRAM or env:VARIABLE"),
    AP_INIT_TAKE1("GnuTLSTPMTCTI", set_tpm_tcti, nullptr, RSRC_CONF,
                  "How to reach the TPM 2.0: a tpm2-tss TCTI string, e.g. device:/dev/tpmrm0, "
                  "swtpm:host=127.0.0.1,port=2321 or tabrmd"),
    AP_INIT_TAKE1("GnuTLSSRKPIN", set_secret<srk_pin_directives>, nullptr, RSRC_CONF,
                  "Authorization of the TPM storage root key"),
    AP_INIT_TAKE1("GnuTLSSRKPINSource", set_secret_source<srk_pin_directives>, nullptr, RSRC_CONF,
                  "Where the TPM SRK authorization comes from: file:PATH, exec:PROGRAM or env:VARIABLE"),
    AP_INIT_TAKE1("GnuTLSRSASigner", set_rsa_signer, nullptr, RSRC_CONF,
                  "Who signs with RSA keys from files: auto (libcrypto, else GnuTLS), libcrypto or gnutls"),
    AP_INIT_TAKE1("GnuTLSKeyIsolation", set_key_isolation, nullptr, RSRC_CONF,
                  "Whether the key agent process holds this server's file and PKCS#11 keys "
                  "(on) or its workers do (off); TPM keys are always in the agent"),
    AP_INIT_TAKE1("GnuTLSExportCertificates", set_export_certificates, nullptr, RSRC_CONF,
                  "Export PEM certificates to CGI as SSL_SERVER_CERT/SSL_CLIENT_CERT: off, on (16K) or a size"),
    AP_INIT_TAKE1("GnuTLSCache", set_cache, nullptr, RSRC_CONF,
                  "TLS session cache: a socache provider with its parameters (shmcb:..., dbm:..., "
                  "memcache:host:port, redis:host:port) or none"),
    AP_INIT_TAKE1("GnuTLSCacheTimeout", set_seconds<&ServerConfig::cache_timeout>, nullptr, RSRC_CONF,
                  "Seconds a TLS session (or ticket) stays resumable (default 300)"),
    AP_INIT_TAKE1("GnuTLSSessionTickets", set_flag<&ServerConfig::session_tickets>, nullptr, RSRC_CONF,
                  "Resume sessions with encrypted tickets (TLS 1.2 and 1.3): On or Off"),
    AP_INIT_TAKE1("GnuTLSClientVerify", set_client_verify, nullptr, RSRC_CONF | OR_AUTHCFG,
                  "Client certificates: ignore, request or require"),
    AP_INIT_TAKE1("GnuTLSClientCAFile", set_path<&ServerConfig::client_ca_file>, nullptr, RSRC_CONF,
                  "PEM file of the CAs client certificates must chain to"),
    AP_INIT_TAKE1("GnuTLSX509CAFile", set_path<&ServerConfig::client_ca_file>, nullptr, RSRC_CONF,
                  "Old name of GnuTLSClientCAFile"),
    AP_INIT_TAKE1("GnuTLSClientKeyPurpose", set_client_purpose, nullptr, RSRC_CONF,
                  "Key purpose OID client certificates must carry if they have an EKU (default TLS client auth)"),
    AP_INIT_TAKE1("GnuTLSSRPPasswdFile", set_path<&ServerConfig::srp_passwd_file>, nullptr, RSRC_CONF,
                  "SRP password file (srptool --passwd)"),
    AP_INIT_TAKE1("GnuTLSSRPPasswdConfFile", set_path<&ServerConfig::srp_conf_file>, nullptr, RSRC_CONF,
                  "SRP parameters file (srptool --create-conf)"),
    AP_INIT_TAKE1("GnuTLSOCSPStapling", set_flag<&ServerConfig::ocsp_stapling>, nullptr, RSRC_CONF,
                  "Staple OCSP responses: On or Off"),
    AP_INIT_ITERATE("GnuTLSOCSPResponseFile", add_ocsp_response_file, nullptr, RSRC_CONF,
                    "DER OCSP responses to staple, for the server certificate first, then its issuers"),
    AP_INIT_TAKE1("GnuTLSOCSPCache", set_ocsp_cache, nullptr, RSRC_CONF, "OCSP response cache (socache)"),
    AP_INIT_TAKE1("GnuTLSOCSPAutoRefresh", set_flag<&ServerConfig::ocsp_auto_refresh>, nullptr, RSRC_CONF,
                  "Refresh OCSP responses: On/Off"),
    AP_INIT_TAKE1("GnuTLSOCSPCheckNonce", set_flag<&ServerConfig::ocsp_check_nonce>, nullptr, RSRC_CONF,
                  "Nonces in OCSP requests: On/Off"),
    AP_INIT_TAKE1("GnuTLSOCSPCacheTimeout", set_seconds<&ServerConfig::ocsp_cache_timeout>, nullptr, RSRC_CONF,
                  "Seconds"),
    AP_INIT_TAKE1("GnuTLSOCSPFailureTimeout", set_seconds<&ServerConfig::ocsp_failure_timeout>, nullptr, RSRC_CONF,
                  "Seconds"),
    AP_INIT_TAKE1("GnuTLSOCSPFuzzTime", set_seconds<&ServerConfig::ocsp_fuzz_time>, nullptr, RSRC_CONF, "Seconds"),
    AP_INIT_TAKE1("GnuTLSOCSPSocketTimeout", set_socket_timeout, nullptr, RSRC_CONF, "Seconds (at least 1)"),
    AP_INIT_TAKE1("GnuTLSProxyEngine", set_flag<&ServerConfig::proxy_enabled>, nullptr, RSRC_CONF,
                  "TLS towards https:// back ends of mod_proxy: On or Off"),
    AP_INIT_TAKE1("GnuTLSProxyCAFile", set_path<&ServerConfig::proxy_ca_file>, nullptr, RSRC_CONF,
                  "PEM CAs that back-end certificates must chain to"),
    AP_INIT_TAKE1("GnuTLSProxyCRLFile", set_path<&ServerConfig::proxy_crl_file>, nullptr, RSRC_CONF,
                  "PEM CRLs for back-end certificates"),
    AP_INIT_TAKE1("GnuTLSProxyCertificateFile", set_path<&ServerConfig::proxy_cert_file>, nullptr, RSRC_CONF,
                  "PEM client certificate chain towards back ends"),
    AP_INIT_TAKE1("GnuTLSProxyKeyFile", set_key_reference<&ServerConfig::proxy_key_file>, nullptr, RSRC_CONF,
                  "Private key of the proxy client certificate: a file, a pkcs11: URL or a TPM key"),
    AP_INIT_TAKE1("GnuTLSProxyPriorities", set_priority_string<&ServerConfig::proxy_priorities>, nullptr, RSRC_CONF,
                  "GnuTLS priority string for back-end connections"),
    AP_INIT_TAKE1("GnuTLSPKCS11Module", add_pkcs11_module, nullptr, RSRC_CONF,
                  "PKCS#11 module to load instead of p11-kit's configured ones; may repeat"),
    AP_INIT_TAKE1("GnuTLSP11Module", add_pkcs11_module, nullptr, RSRC_CONF, "Same as GnuTLSPKCS11Module"),
    {nullptr, {nullptr}, nullptr, 0, RAW_ARGS, nullptr},
};

} // namespace mgs::httpd

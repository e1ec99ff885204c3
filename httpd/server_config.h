// Per-server (main server and each virtual host) configuration: what the
// directives said, and the TLS objects built from it at configuration check.
#pragma once

#include "httpd/apache.h"
#include "keystore/libcrypto_rsa_signer.h"
#include "keystore/secret.h"
#include "src/client_credentials.h"
#include "src/priorities.h"
#include "src/tls_connection.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mgs::httpd {

// mod_gnutls's defaults, for the directives whose default is a value
// (docs/directives.md); every use of an unset setting takes them from here.
namespace defaults {
inline constexpr int cache_timeout = 300;        // GnuTLSCacheTimeout
inline constexpr int ocsp_cache_timeout = 3600;  // GnuTLSOCSPCacheTimeout
inline constexpr int ocsp_failure_timeout = 300; // GnuTLSOCSPFailureTimeout
inline constexpr int ocsp_socket_timeout = 6;    // GnuTLSOCSPSocketTimeout
inline constexpr const char* ocsp_cache = "shmcb:gnutls_ocsp_cache"; // GnuTLSOCSPCache
// GnuTLSPriorities: default_priorities (src/priorities.h)
} // namespace defaults

// What vhost_setup builds for an enabled server; shared read-only by every
// connection to it.
struct VhostTls {
    std::unique_ptr<ServerCredentials> credentials; // absent for an SRP-only server
    std::unique_ptr<SrpCredentials> srp;
    Priority priority;
    TlsSettings settings;
    std::unique_ptr<TicketKey> ticket_key; // derived for this host (session_context)
    std::chrono::seconds cache_timeout{300};
    // What decides who may connect and how (src/vhost_identity.h): a request
    // for another virtual host on this one's connection needs the same.
    std::string identity;
    // A digest of ServerName and identity: what session-cache entries and
    // ticket keys are bound to (shared by a pool with one configuration).
    std::string session_context;
    // Per process: whether this key's last signature failed (for logging
    // state changes once).
    std::atomic<bool> signer_failing{false};
};

// What this server uses as a TLS client towards back ends.
struct ProxyTls {
    std::unique_ptr<ClientCredentials> credentials;
    Priority priority;
    // A digest of the proxy settings (CAs, CRLs, client certificate and
    // key, priorities): back-end sessions in GnuTLSCache are bound to it
    // and to the back end's address and name.
    std::string session_context;
    std::chrono::seconds cache_timeout{300};
};

struct ServerConfig {
    std::optional<bool> enabled;
    std::optional<std::string> cert_file;
    std::optional<std::string> key_file;
    std::optional<std::string> priorities;
    std::optional<std::string> dh_file;
    std::optional<Secret> pin;
    std::optional<std::string> pin_source;
    std::optional<Secret> srk_pin;
    std::optional<std::string> srk_pin_source;
    std::optional<RsaEngine> rsa_engine; // GnuTLSRSASigner: who signs with RSA keys from files
    std::optional<bool> key_isolation;   // GnuTLSKeyIsolation: keys in the key agent (vhost_setup.cpp's default)
    std::optional<std::size_t> export_certificates; // bytes; 0 = off
    std::optional<int> cache_timeout;               // seconds
    std::optional<bool> session_tickets;
    std::optional<ClientVerify> client_verify; // server/vhost level: enforced in the handshake
    std::optional<std::string> client_ca_file;
    std::optional<std::string> client_purpose;
    std::optional<std::string> srp_passwd_file;
    std::optional<std::string> srp_conf_file;
    // OCSP stapling: responses from files, or fetched from the responder.
    std::optional<bool> ocsp_stapling;
    std::optional<std::vector<std::string>> ocsp_response_files; // "" = fetch
    std::optional<bool> ocsp_auto_refresh, ocsp_check_nonce;
    std::optional<int> ocsp_cache_timeout, ocsp_failure_timeout, ocsp_fuzz_time, ocsp_socket_timeout;
    // The TLS reverse proxy (GnuTLSProxy*).
    std::optional<bool> proxy_enabled;
    std::optional<std::string> proxy_ca_file, proxy_crl_file, proxy_cert_file, proxy_key_file, proxy_priorities;

    // Server config only (the main server's record holds them).
    std::vector<std::string> pkcs11_modules;
    std::optional<std::string> tpm_tcti; // GnuTLSTPMTCTI
    std::optional<std::string> ocsp_cache; // GnuTLSOCSPCache

    struct ModuleState* state = nullptr; // this configuration generation's (module_state.h)

    std::unique_ptr<VhostTls> tls;     // built by check_config, never merged
    std::shared_ptr<struct OcspStapler> ocsp; // fetching responses for this server's certificate
    std::unique_ptr<ProxyTls> proxy;   // likewise, with GnuTLSProxyEngine on

    bool is_enabled() const { return enabled.value_or(false); }
};

// Per directory (<Directory>, <Location>, .htaccess): checked per request.
struct DirConfig {
    std::optional<ClientVerify> client_verify;
};

ServerConfig* server_config(const server_rec* s);
const DirConfig* dir_config(const request_rec* r);
void* create_dir_config(apr_pool_t* p, char* dir);
void* merge_dir_config(apr_pool_t* p, void* base, void* add);

void* create_server_config(apr_pool_t* p, server_rec* s);
void* merge_server_config(apr_pool_t* p, void* base, void* add);

} // namespace mgs::httpd

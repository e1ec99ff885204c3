// Everything that lives for one configuration generation, owned by the
// configuration pool (the role of mod_ssl's SSLModConfigRec and mod_tls's
// global config): a graceful restart reads the configuration into a new
// pool and so builds a new state; the old one goes with its pool. Every
// server config points at it. Children inherit it with the parent's memory.
//
#pragma once

#include "httpd/apache.h"
#include "httpd/socache.h"
#include "keystore/registry.h"
#include "keystore/secret_source.h"
#include "pkcs11/providers.h"
#include "src/session_cache.h"
#include "tpm/key_agent.h"

#include <apr_thread_proc.h>
#include <mod_watchdog.h>

#include <memory>
#include <string>
#include <vector>

namespace mgs::httpd {

struct OcspStapler;
struct ServerConfig;

// OCSP stapling by fetching (ocsp_stapling.cpp).
struct OcspState {
    Socache cache{"GnuTLSOCSPCache"};
    std::vector<std::shared_ptr<OcspStapler>> staplers;
    ap_watchdog_t* watchdog = nullptr; // refreshing responses in the background
    APR_OPTIONAL_FN_TYPE(ap_watchdog_set_callback_interval)* set_interval = nullptr;
};

struct ModuleState {
    // secret_sources(the process pool, pconf's parent)
    SecretSourceCache* secret_sources = nullptr;
    apr_pool_t* pconf = nullptr;
    pkcs11::ProviderSet pkcs11_modules;       // GnuTLSPKCS11Module and the URLs' module-path
    KeyRegistry keys;                         // every key backend, file last
    std::string tpm_tcti;                     // GnuTLSTPMTCTI, for TPM keys' open options
    std::unique_ptr<TicketKey> ticket_master; // made when any server uses tickets
    Socache session_cache{"GnuTLSCache"};
    OcspState ocsp;
    tpm::KeyAgent key_agent;                  // holds and signs with TPM keys and isolated keys
    // A PKCS#11 key that is not isolated signs in the workers: only then do
    // they load the PKCS#11 modules (open_key_modules).
    bool workers_sign_with_pkcs11 = false;
    // Every ServerConfig of this configuration, merged or not: Apache keeps
    // the unmerged ones too, and their GnuTLSPIN values are wiped with the
    // merged ones' (close_key_modules), or every worker would inherit them.
    std::vector<ServerConfig*> configs;
    apr_proc_t key_agent_process{};           // the agent's process, for the MPM's other-child checks
    bool key_agent_wanted = false;            // this generation serves with an agent (key_agent_monitor)
    apr_time_t key_agent_next_try = 0;        // when a failed start is tried again
};

// The state of the configuration that `pconf` holds, made on first use
// (create_server_config of the main server) and freed with the pool.
ModuleState& module_state(apr_pool_t* pconf);
// The state a server belongs to.
ModuleState& module_state(const server_rec* s);

// The secret sources read during this configuration load (keystore/
// secret_source.h). It lives in the process pool, not in the state: Apache
// reads its configuration twice at startup and an env: source is gone after
// the first read. Cleared once the keys of a serving configuration loaded.
SecretSourceCache& secret_sources(apr_pool_t* process_pool);

} // namespace mgs::httpd

// The module record: wires Apache's hooks to the components that do the work.
#include "httpd/backend_tls.h"
#include "httpd/connection.h"
#include "httpd/directives.h"
#include "httpd/io_filters.h"
#include "httpd/key_agent_process.h"
#include "httpd/ocsp_stapling.h"
#include "httpd/server_config.h"
#include "httpd/session_cache.h"
#include "httpd/ssl_hooks.h"
#include "httpd/ssl_vars.h"
#include "httpd/status_page.h"
#include "httpd/vhost_setup.h"
#include "httpd/module_state.h"
#include "pkcs11/url.h"

#include <mpm_common.h>

#include <gnutls/gnutls.h>

namespace mgs::httpd {
namespace {

int post_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec*)
{
    ap_add_version_component(pconf, "mod_gnutls/" MGS_VERSION);
    return OK;
}

// Runs after every module's post_config, just before Apache forks.
// Also the end of the secrets' life in the configuration: every key has
// loaded (and copied what it needs: a token's PIN, or the TPM key agent's
// authorizations), so GnuTLSPIN and GnuTLSSRKPIN values are wiped here and
// the children never inherit them.
int close_key_modules(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* base)
{
    module_state(base).pkcs11_modules.close_before_fork();
    // The first startup pass never serves: the second one reads the same
    // sources (an env: variable is gone by then).
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
        module_state(base).secret_sources->clear();
    for (ServerConfig* sc : module_state(base).configs) {
        sc->pin.reset();
        sc->srk_pin.reset();
        // A pin-value in a pkcs11: URL: the keys that need it have their
        // own copy (a worker's token signer, the key agent's recipe).
        for (auto* ref : {&sc->key_file, &sc->cert_file, &sc->proxy_key_file})
            if (*ref && pkcs11::is_pkcs11_url(**ref) && (*ref)->find("pin-value") != std::string::npos) {
                std::string redacted = pkcs11::redact_url(**ref);
                gnutls_memset((*ref)->data(), 0, (*ref)->size());
                **ref = redacted;
            }
    }
    return OK;
}

// Only where a key signs in the workers: with every PKCS#11 key in the key
// agent (GnuTLSKeyIsolation), no worker loads a PKCS#11 module.
void open_key_modules(apr_pool_t*, server_rec* s)
{
    if (module_state(s).workers_sign_with_pkcs11)
        module_state(s).pkcs11_modules.open_in_child();
}

void register_hooks(apr_pool_t*)
{
    ap_hook_pre_config(cache_pre_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_pre_config(ocsp_pre_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_post_config(ocsp_post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_child_init(ocsp_child_init, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
    ap_hook_check_config(check_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_post_config(cache_post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_child_init(cache_child_init, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_post_config(close_key_modules, nullptr, nullptr, APR_HOOK_REALLY_LAST);
    ap_hook_child_init(open_key_modules, nullptr, nullptr, APR_HOOK_FIRST);
    ap_hook_post_config(start_key_agent, nullptr, nullptr, APR_HOOK_REALLY_LAST);
    ap_hook_child_init(key_agent_child_init, nullptr, nullptr, APR_HOOK_FIRST);
    ap_hook_monitor(key_agent_monitor, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_pre_connection(pre_connection, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_ssl_bind_outgoing(bind_outgoing, nullptr, nullptr, APR_HOOK_MIDDLE);
    // After mod_reqtimeout's process_connection hook (also FIRST), which
    // arms `RequestReadTimeout handshake=`: we handshake in ours, so without
    // this the limit would depend on LoadModule order.
    static const char* const after_reqtimeout[] = {"mod_reqtimeout.c", nullptr};
    ap_hook_process_connection(process_connection, after_reqtimeout, nullptr, APR_HOOK_FIRST);
    ap_hook_post_read_request(reject_plain_http, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
    ap_hook_post_read_request(check_request_vhost, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_access_checker(check_client_access, nullptr, nullptr, APR_HOOK_MIDDLE);
    // Again where `Satisfy Any` cannot turn a refusal into a password
    // prompt: Apache runs access_checker_ex whatever Satisfy says, and
    // its refusals are final.
    ap_hook_check_access_ex(check_client_access, nullptr, nullptr, APR_HOOK_FIRST, AP_AUTH_INTERNAL_PER_URI);
    input_filter_handle = ap_register_input_filter("gnutls_input", input_filter, nullptr,
                                                   static_cast<ap_filter_type>(AP_FTYPE_CONNECTION + 5));
    output_filter_handle = ap_register_output_filter("gnutls_output", output_filter, nullptr,
                                                     static_cast<ap_filter_type>(AP_FTYPE_CONNECTION + 5));
    register_ssl_hooks();
    register_ssl_vars();
    register_status_page();
}

} // namespace
} // namespace mgs::httpd

extern "C" {
__attribute__((visibility("default"))) module AP_MODULE_DECLARE_DATA gnutls_module = {
    STANDARD20_MODULE_STUFF,
    mgs::httpd::create_dir_config,
    mgs::httpd::merge_dir_config,
    mgs::httpd::create_server_config,
    mgs::httpd::merge_server_config,
    mgs::httpd::directives,
    mgs::httpd::register_hooks,
    AP_MODULE_FLAG_NONE,
};
}

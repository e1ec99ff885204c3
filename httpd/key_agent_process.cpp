#include "httpd/key_agent_process.h"
#include "httpd/errors.h"

#include "httpd/module_state.h"

#include "keystore/error.h"
#include "tpm/key_agent.h"

#include <apr_thread_proc.h>
#include <http_main.h>

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

namespace {

void log_from_agent(int level, const std::string& message)
{
    int apache_level = level == 0 ? APLOG_ERR : level == 1 ? APLOG_NOTICE : APLOG_INFO;
    ap_log_error(APLOG_MARK, apache_level, 0, ap_server_conf, "mod_gnutls: " MGSLOGNO(01601) "%s", message.c_str());
}

void agent_maintenance(int reason, void* data, int status);

void spawn(ModuleState& state)
{
    state.key_agent_process.pid = state.key_agent.spawn(log_from_agent);
    apr_proc_other_child_register(&state.key_agent_process, agent_maintenance, &state, nullptr, state.pconf);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, ap_server_conf, "mod_gnutls: TPM key agent started (pid %d)",
                 static_cast<int>(state.key_agent_process.pid));
}

// The MPM tells us when the agent process ended: start another, so TPM
// keys keep signing without an Apache restart.
void agent_maintenance(int reason, void* data, int status)
{
    if (reason != APR_OC_REASON_DEATH && reason != APR_OC_REASON_LOST)
        return; // restart and unregister: the pconf cleanup stops it
    auto& state = *static_cast<ModuleState*>(data);
    apr_proc_other_child_unregister(data);
    state.key_agent.process_ended();
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, ap_server_conf,
                 "mod_gnutls: " MGSLOGNO(01602) "TPM key agent (pid %d) ended (status %d); starting a new one",
                 static_cast<int>(state.key_agent_process.pid), status);
    try {
        spawn(state);
    } catch (const std::exception& e) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, ap_server_conf, "mod_gnutls: " MGSLOGNO(01603) "%s", e.what());
    }
}

apr_status_t stop_agent(void* state)
{
    static_cast<ModuleState*>(state)->key_agent.stop();
    return APR_SUCCESS;
}

} // namespace

int start_key_agent(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec*)
{
    // Apache reads its configuration twice at startup; the first pass only
    // checks it and never serves.
    ModuleState& state = module_state(pconf);
    if (!state.key_agent.has_keys() || ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    apr_pool_cleanup_register(pconf, &state, stop_agent, apr_pool_cleanup_null);
    try {
        spawn(state);
    } catch (const std::exception& e) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, ap_server_conf, "mod_gnutls: " MGSLOGNO(01604) "%s", e.what());
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

void key_agent_child_init(apr_pool_t*, server_rec* s) { module_state(s).key_agent.close_listener_in_child(); }

} // namespace mgs::httpd

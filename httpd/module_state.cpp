#include "httpd/module_state.h"

#include "httpd/key_agent_process.h"
#include "httpd/server_config.h"
#include "keystore/file_signer.h"
#include "pkcs11/token_signer.h"
#include "tpm/tpm_signer.h"

namespace mgs::httpd {

namespace {

constexpr const char* state_key = "mod_gnutls:module-state";

ModuleState* make_state(apr_pool_t* pconf)
{
    auto* state = new ModuleState();
    state->pconf = pconf;
    // pconf is a child of the process pool, which outlives both passes.
    apr_pool_t* process_pool = apr_pool_parent_get(pconf);
    state->secret_sources = &secret_sources(process_pool ? process_pool : pconf);
    // Hardware backends claim their reference forms first; files take the rest.
    state->keys.add(std::make_unique<pkcs11::Pkcs11KeyBackend>(state->pkcs11_modules));
    // At a restart, the agent the previous generation left running: its
    // keys need no new check on the TPM (tpm/key_agent.h).
    state->key_agent.inherit(take_parked_agent());
    state->keys.add(std::make_unique<tpm::TpmKeyBackend>(&state->key_agent));
    state->keys.add(std::make_unique<FileKeyBackend>());
    return state;
}

} // namespace

ModuleState& module_state(apr_pool_t* pconf)
{
    void* data = nullptr;
    apr_pool_userdata_get(&data, state_key, pconf);
    if (data)
        return *static_cast<ModuleState*>(data);
    // Registered before anything the state's members register on the pool,
    // so those cleanups (cache instances) run first.
    ModuleState* state = pool_owned(pconf, make_state(pconf));
    apr_pool_userdata_setn(state, state_key, nullptr, pconf);
    return *state;
}

ModuleState& module_state(const server_rec* s) { return *server_config(s)->state; }

SecretSourceCache& secret_sources(apr_pool_t* pool)
{
    constexpr const char* key = "mod_gnutls:secret-sources";
    void* data = nullptr;
    apr_pool_userdata_get(&data, key, pool);
    if (!data) {
        data = pool_owned(pool, new SecretSourceCache());
        apr_pool_userdata_setn(data, key, nullptr, pool);
    }
    return *static_cast<SecretSourceCache*>(data);
}

} // namespace mgs::httpd

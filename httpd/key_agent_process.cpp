#include "httpd/key_agent_process.h"
#include "httpd/errors.h"

#include "httpd/module_state.h"

#include "keystore/error.h"
#include "pkcs11/token_signer.h"
#include "tpm/key_agent.h"

#include <ap_mpm.h>
#include <apr_portable.h>
#include <apr_thread_proc.h>
#include <http_main.h>
#include <unixd.h>

#include <pwd.h>
#include <signal.h>

#include <cstring>

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

namespace {

void log_from_agent(int level, const std::string& message)
{
    int apache_level = level == 0 ? APLOG_ERR : level == 1 ? APLOG_NOTICE : APLOG_INFO;
    ap_log_error(APLOG_MARK, apache_level, 0, ap_server_conf, "mod_gnutls: " MGSLOGNO(01601) "%s", message.c_str());
}

void agent_maintenance(int reason, void* data, int status);

// Whom the agent may run as, given the TPMs it talks to: a TCP simulator
// (swtpm, mssim) is reachable by anyone, a device node by the tss group
// (Debian's udev rule: /dev/tpmrm0 is tss:tss 0660). The TPM software stack's
// own "tss" user is preferred; a network TPM falls back to Apache's User
// (the agent is not dumpable, so the workers cannot read its memory). A
// D-Bus resource manager (tabrmd) or tpm2-tss's default search keep root:
// their access rules are not ours to guess.
//
// Isolated keys (GnuTLSKeyIsolation): key files are read before the agent
// drops root; token keys are used as Apache's User, the identity the
// workers used them with before isolation (a token's files and devices
// are set up for it). With TPM keys too, a TCP TPM is reachable as that
// user; a TPM device keeps root (its group is tss's, the token's is not).
void choose_agent_user(const tpm::KeyAgent& agent, tpm::AgentSetup& setup)
{
    const bool tokens = agent.hosts_backend("pkcs11");
    if (tokens || agent.tpm_key_count() == 0) {
        bool tcp_tpm = true;
        for (const std::string& t : agent.tctis())
            tcp_tpm = tcp_tpm && (t.starts_with("swtpm") || t.starts_with("mssim"));
        if (ap_unixd_config.user_id != 0 && tcp_tpm) {
            setup.run_as_uid = ap_unixd_config.user_id;
            setup.run_as_gid = ap_unixd_config.group_id;
        }
        return;
    }
    bool network = true, device = true;
    for (const std::string& t : agent.tctis()) {
        network = network && (t.starts_with("swtpm") || t.starts_with("mssim"));
        device = device && t.starts_with("device");
    }
    if (const passwd* tss = ::getpwnam("tss"); tss && (network || device)) {
        setup.run_as_uid = tss->pw_uid;
        setup.run_as_gid = tss->pw_gid;
    } else if (network && ap_unixd_config.user_id != 0) {
        setup.run_as_uid = ap_unixd_config.user_id;
        setup.run_as_gid = ap_unixd_config.group_id;
    }
}

tpm::AgentSetup agent_setup(ModuleState& state)
{
    tpm::AgentSetup setup;
    setup.log = log_from_agent;
    setup.allowed_uids = {ap_unixd_config.user_id};
    apr_os_file_t log_fd;
    if (ap_server_conf->error_log && apr_os_file_get(&log_fd, ap_server_conf->error_log) == APR_SUCCESS)
        setup.keep_fds.push_back(log_fd);
    choose_agent_user(state.key_agent, setup);
    if (state.key_agent.hosts_backend("pkcs11"))
        setup.before_serving = [&state] {
            // One process signs for every worker: 64 sessions per key where
            // each worker process had 16.
            pkcs11::set_sessions_per_key(64);
            state.pkcs11_modules.open_in_child();
        };
    setup.open_key = [&state](const std::string& reference, const KeyOptions& options) {
        return state.keys.open(reference, options);
    };
    return setup;
}

void spawn(ModuleState& state)
{
    tpm::AgentSetup setup = agent_setup(state);
    state.key_agent_process.pid = state.key_agent.spawn(setup);
    apr_proc_other_child_register(&state.key_agent_process, agent_maintenance, &state, nullptr, state.pconf);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, ap_server_conf,
                 "mod_gnutls: key agent started (pid %d) as uid %ld: %" APR_SIZE_T_FMT " TPM keys, %" APR_SIZE_T_FMT " isolated keys",
                 static_cast<int>(state.key_agent_process.pid),
                 static_cast<long>(setup.run_as_uid.value_or(::geteuid())), state.key_agent.tpm_key_count(),
                 state.key_agent.hosted_key_count());
}

// The MPM tells us when the agent process ended: start another, so its
// keys keep signing without an Apache restart.
void agent_maintenance(int reason, void* data, int status)
{
    if (reason != APR_OC_REASON_DEATH && reason != APR_OC_REASON_LOST)
        return; // restart and unregister: the pconf cleanup stops it
    auto& state = *static_cast<ModuleState*>(data);
    apr_proc_other_child_unregister(data);
    state.key_agent.process_ended();
    // status: the agent's exit code or the signal that ended it (APR does
    // not say which); the agent itself only exits with 0 or 1, so SIGALRM's
    // number is its TPM command deadline.
    const char* why = status == SIGALRM
                          ? " (a TPM command did not finish in time: the TPM or its connection hangs)"
                          : "";
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, ap_server_conf,
                 "mod_gnutls: " MGSLOGNO(01602) "key agent (pid %d) ended (status %d)%s; starting a new one",
                 static_cast<int>(state.key_agent_process.pid), status, why);
    try {
        spawn(state);
    } catch (const std::exception& e) {
        // key_agent_monitor tries again.
        state.key_agent_next_try = apr_time_now() + apr_time_from_sec(1);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, ap_server_conf, "mod_gnutls: " MGSLOGNO(01603) "%s", e.what());
    }
}

// The agent of the generation being unloaded, until the next generation
// takes it (tpm::KeyAgent::inherit). In the parent's retained data, which
// outlives pconf; plain data only, because this module's code is unloaded
// and loaded again at every restart, perhaps a newer build of it: an agent
// parked by another build is stopped by its pid, never read through the
// pointer.
// The layout of this struct never changes under this key (a new layout
// gets a new key): pid and listen_fd are what any build can stop.
struct Retained {
    pid_t pid;
    int listen_fd;
    char build[160];
    std::size_t sizes[4];
    tpm::RunningAgent* parked;
};
#define MGS_STR2(x) #x
#define MGS_STR(x) MGS_STR2(x)
// What the parked RunningAgent's memory layout depends on: this module's
// version and layout revision, the compiler and the libstdc++ that built it,
// the sizes of the types. (No __DATE__: builds are reproducible.)
constexpr char this_build[] = "mod_gnutls " MGS_VERSION " agent-layout 1 " __VERSION__ " " MGS_STR(__GLIBCXX__);
static_assert(sizeof this_build <= sizeof(Retained::build));
constexpr std::size_t layout_sizes[] = {sizeof(tpm::RunningAgent), sizeof(tpm::KeyFacts), sizeof(std::string),
                                        sizeof(Bytes)};

Retained& retained()
{
    constexpr const char* key = "mod_gnutls:tpm-key-agent:v2";
    void* data = ap_retained_data_get(key);
    if (!data) {
        data = ap_retained_data_create(key, sizeof(Retained));
        std::memset(data, 0, sizeof(Retained));
    }
    return *static_cast<Retained*>(data);
}

// pconf is cleared for a restart and destroyed when Apache stops. At a
// restart the agent is parked, not stopped: children of this generation
// may still be in a handshake (graceful restart lets them finish), and
// stopping the agent under them failed those handshakes (bench/soak.py).
// When Apache stops, the agent stops with it, before the parent exits.
apr_status_t park_or_stop_agent(void* data)
{
    auto& state = *static_cast<ModuleState*>(data);
    state.key_agent_wanted = false;
    // An ungraceful restart has killed the old children already: nothing
    // is in flight, and a new agent (with a new token) costs nothing.
    const ap_unixd_mpm_retained_data* mpm = ap_unixd_mpm_get_retained_data();
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_DESTROY_CONFIG || (mpm && mpm->is_ungraceful)) {
        state.key_agent.stop();
        return APR_SUCCESS;
    }
    std::unique_ptr<tpm::RunningAgent> running = state.key_agent.release();
    if (!running)
        return APR_SUCCESS;
    Retained& r = retained();
    std::memcpy(r.build, this_build, sizeof this_build);
    std::memcpy(r.sizes, layout_sizes, sizeof layout_sizes);
    r.pid = running->pid;
    r.listen_fd = running->listen_fd;
    r.parked = running.release();
    return APR_SUCCESS;
}

} // namespace

std::unique_ptr<tpm::RunningAgent> take_parked_agent()
{
    Retained& r = retained();
    if (r.pid == 0 && r.listen_fd == 0 && !r.parked)
        return nullptr;
    std::unique_ptr<tpm::RunningAgent> parked;
    if (std::memcmp(r.build, this_build, sizeof this_build) == 0 &&
        std::memcmp(r.sizes, layout_sizes, sizeof layout_sizes) == 0 && r.parked && r.parked->pid == r.pid &&
        r.parked->listen_fd == r.listen_fd) {
        parked.reset(r.parked);
    } else if (r.pid > 0 || r.listen_fd > 0) {
        // Parked by another build of the module: stop it by what any build
        // stored the same way (its memory is not ours to interpret).
        tpm::RunningAgent other;
        other.pid = r.pid;
        other.listen_fd = r.listen_fd;
        tpm::stop_agent_process(other);
    }
    std::memset(&r, 0, sizeof r);
    return parked;
}

int start_key_agent(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec*)
{
    // Apache reads its configuration twice at startup; the first pass only
    // checks it and never serves.
    ModuleState& state = module_state(pconf);
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    if (!state.key_agent.has_keys()) {
        state.key_agent.stop(); // a previous generation's agent, if any
        return OK;
    }
    apr_pool_cleanup_register(pconf, &state, park_or_stop_agent, apr_pool_cleanup_null);
    state.key_agent_wanted = true;
    try {
        if (state.key_agent.adopt_previous(agent_setup(state))) {
            // The same TPM keys: the agent serves the old generation's
            // children and this one's.
            state.key_agent_process.pid = state.key_agent.pid();
            apr_proc_other_child_register(&state.key_agent_process, agent_maintenance, &state, nullptr,
                                          state.pconf);
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, ap_server_conf,
                         "mod_gnutls: key agent (pid %d) kept: its keys did not change",
                         static_cast<int>(state.key_agent_process.pid));
            return OK;
        }
        spawn(state);
    } catch (const std::exception& e) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, ap_server_conf, "mod_gnutls: " MGSLOGNO(01604) "%s", e.what());
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

void key_agent_child_init(apr_pool_t*, server_rec* s) { module_state(s).key_agent.close_listener_in_child(); }

int key_agent_monitor(apr_pool_t*, server_rec* s)
{
    // A new agent that could not be started (fork failed, no memory) is
    // tried again at the MPM's maintenance (about every 10 s), until one
    // runs: the keys it holds sign nowhere else.
    ModuleState& state = module_state(s);
    if (!state.key_agent_wanted || state.key_agent.pid() > 0 || apr_time_now() < state.key_agent_next_try)
        return DECLINED;
    int mpm_state = AP_MPMQ_STARTING;
    if (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS && mpm_state == AP_MPMQ_STOPPING)
        return DECLINED; // a stop or restart is under way: the cleanup decides

    try {
        spawn(state);
    } catch (const std::exception& e) {
        state.key_agent_next_try = apr_time_now() + apr_time_from_sec(5);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, ap_server_conf, "mod_gnutls: " MGSLOGNO(01603) "%s", e.what());
    }
    return DECLINED;
}

} // namespace mgs::httpd

// The TPM key agent: one process, forked by the Apache parent before its
// children, that owns the TPM connection and every loaded TPM key and signs
// for all children over a UNIX socket (h2o's neverbleed is the model).
//
// Why a separate process: swtpm serves one client connection at a time, a
// TPM without a resource manager has only a few object slots, and a TPM
// connection must not cross a fork. Children hold no TPM state at all.
//
// The socket is in Linux's abstract namespace with a random name; only root,
// the agent's user and Apache's User may connect (agent_connections.h), and
// a client must first send a random 32-byte token that only the Apache
// parent and its children know. The agent drops root where its TPM allows
// it, holds the only copies of the key and SRK authorizations outside the
// parent, and ends itself if a TPM command hangs (the parent starts another).
#pragma once

#include "keystore/signer.h"
#include "tpm/loaded_key.h"

#include <sys/types.h>

#include <functional>
#include <optional>
#include <mutex>
#include <vector>

namespace mgs::tpm {

// level: 0 error, 1 notice, 2 info.
using AgentLog = std::function<void(int level, const std::string& message)>;

// How the parent starts the agent.
struct AgentSetup {
    AgentLog log;
    std::vector<uid_t> allowed_uids; // Apache's User (root always may)
    std::vector<int> keep_fds;       // inherited descriptors the agent keeps (the error log)
    // Where the TPM allows it, the agent runs as this user instead of root.
    std::optional<uid_t> run_as_uid;
    std::optional<gid_t> run_as_gid;
};

// Longest a TPM command may take in the agent before it ends itself: a
// signature, and connecting plus loading keys (creating an RSA SRK takes
// seconds on real TPMs).
inline constexpr unsigned agent_sign_deadline_s = 10;
inline constexpr unsigned agent_load_deadline_s = 60;
// How long stop() waits for the agent to end before SIGKILL.
inline constexpr int agent_stop_deadline_ms = 3000;

// One per configuration generation (httpd/module_state.h); the TPM backend
// of that generation adds its keys.
class KeyAgent {
public:
    KeyAgent() = default;
    KeyAgent(const KeyAgent&) = delete;
    KeyAgent& operator=(const KeyAgent&) = delete;

    // Parent: a validated key the agent will hold; returns its index.
    std::size_t add_key(const KeySpec& spec);
    bool has_keys() const { return !keys_.empty(); }
    // The GnuTLSTPMTCTI strings of the keys (to decide whom the agent may run as).
    std::vector<std::string> tctis() const;

    // Parent: create the socket (once per configuration) and fork the agent
    // process; returns its pid. Called again if the agent died.
    pid_t spawn(const AgentSetup& setup);
    // Parent: stop the agent process (SIGTERM, then SIGKILL after
    // agent_stop_deadline_ms) and close the socket.
    void stop();
    // Parent: the agent process ended (reaped by the MPM): forget its pid.
    void process_ended() { pid_ = -1; }
    // Children: close the parent's copy of the listening socket and wipe
    // the key and SRK authorizations (only the agent needs them).
    void close_listener_in_child();

    // True once spawn() ran in this process's ancestry: signers go through it.
    bool active() const { return listen_fd_ >= 0 || active_; }
    // Children: one signature by key `index`. Throws mgs::Error.
    Bytes sign(std::size_t index, const SignRequest& request);

private:
    [[noreturn]] void serve(const AgentSetup& setup);
    int connect_client();

    std::vector<KeySpec> keys_;
    int listen_fd_ = -1;
    bool active_ = false;
    pid_t pid_ = -1;
    std::string address_; // abstract socket name, without the leading NUL
    std::uint8_t token_[32] = {};

    // Children's pool of authenticated connections to the agent.
    std::mutex pool_mutex_;
    std::vector<int> idle_;
    pid_t pool_pid_ = -1;
};

} // namespace mgs::tpm

// The TPM key agent: one process, forked by the Apache parent before its
// children, that owns the TPM connection and every loaded TPM key and signs
// for all children over a UNIX socket (h2o's neverbleed is the model).
//
// Why a separate process: swtpm serves one client connection at a time, a
// TPM without a resource manager has only a few object slots, and a TPM
// connection must not cross a fork. Children hold no TPM state at all.
//
// The socket is in Linux's abstract namespace with a random name, and a
// client must first send a random 32-byte token that only the Apache parent
// and its children know.
#pragma once

#include "keystore/signer.h"
#include "tpm/loaded_key.h"

#include <sys/types.h>

#include <functional>
#include <mutex>
#include <vector>

namespace mgs::tpm {

// level: 0 error, 1 notice, 2 info.
using AgentLog = std::function<void(int level, const std::string& message)>;

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

    // Parent: create the socket (once per configuration) and fork the agent
    // process; returns its pid. Called again if the agent died.
    pid_t spawn(const AgentLog& log);
    // Parent: stop the agent process and close the socket.
    void stop();
    // Parent: the agent process ended (reaped by the MPM): forget its pid.
    void process_ended() { pid_ = -1; }
    // Children: close the parent's copy of the listening socket.
    void close_listener_in_child();

    // True once spawn() ran in this process's ancestry: signers go through it.
    bool active() const { return listen_fd_ >= 0 || active_; }
    // Children: one signature by key `index`. Throws mgs::Error.
    Bytes sign(std::size_t index, const SignRequest& request);

private:
    [[noreturn]] void serve(const AgentLog& log);
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

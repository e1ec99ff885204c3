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

#include "keystore/registry.h"
#include "keystore/signer.h"
#include "tpm/key_check.h"
#include "tpm/loaded_key.h"

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string_view>
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
    // Runs in the agent process before it serves: the PKCS#11 modules of
    // the keys it hosts are opened there (the parent closed them before
    // forking, or never loaded them). Null: nothing to do.
    std::function<void()> before_serving;
    // Opens a key hosted by reference (KeyAgent::host_by_reference) in the
    // agent process, after before_serving.
    std::function<std::shared_ptr<Signer>(const std::string& reference, const KeyOptions& options)> open_key;
};

// Longest a TPM command may take in the agent before it ends itself: a
// signature, and connecting plus loading keys (creating an RSA SRK takes
// seconds on real TPMs).
inline constexpr unsigned agent_sign_deadline_s = 10;
inline constexpr unsigned agent_load_deadline_s = 60;
// How long stop() waits for the agent to end before SIGKILL.
inline constexpr int agent_stop_deadline_ms = 3000;
// Requests for hosted keys (KeyAgent::host) carry this bit in their index.
inline constexpr std::uint32_t hosted_key_bit = 0x80000000u;
// Threads of the agent that serve one client connection each: as many
// signatures in flight as Apache has handshakes, up to this many.
inline constexpr std::size_t agent_max_threads = 1024;

// A running agent process handed from one configuration generation to the
// next at a restart, with what the parent's checks found about its keys.
struct RunningAgent {
    pid_t pid = -1;
    int listen_fd = -1;
    std::string address;
    std::uint8_t token[32] = {};
    Bytes fingerprint;                              // of the whole key list (KeyAgent::fingerprint)
    std::vector<std::pair<Bytes, KeyFacts>> facts;  // per key: spec_fingerprint, its check's result
    Bytes setup;                                    // how it was started (setup_fingerprint)
};

// What of an AgentSetup an adopted agent must share with the new
// generation's: who may connect, whom it runs as, where it logs (the
// error log file's device and inode, so a rotated log gets a new agent).
Bytes setup_fingerprint(const AgentSetup& setup);

// Stops the agent process (SIGTERM, then SIGKILL after
// agent_stop_deadline_ms) and closes its socket.
void stop_agent_process(RunningAgent& agent);

// SHA-256 over a key spec, secrets included: it stays in the parent and
// the agent, which hold the secrets themselves (children wipe it).
Bytes spec_fingerprint(const KeySpec& spec);

// One per configuration generation (httpd/module_state.h); the TPM backend
// of that generation adds its keys.
//
// A restart keeps the agent when the TPM keys did not change: children of
// the old generation may be in a handshake (a graceful restart lets them
// finish), and the new generation would otherwise check its keys on the
// TPM while the old agent holds them (a TPM without a resource manager,
// such as swtpm, then loses the agent's objects and runs out of slots).
// So the new generation reuses the old checks' results for identical keys,
// adopts the running agent if the key list is the same, and otherwise stops
// it before the first new key is checked.
class KeyAgent {
public:
    KeyAgent() = default;
    // A previous generation's agent nobody adopted (a configuration that
    // failed to load) is stopped.
    ~KeyAgent();
    KeyAgent(const KeyAgent&) = delete;
    KeyAgent& operator=(const KeyAgent&) = delete;

    // Parent: a validated key the agent will hold, with what its check
    // found; returns its index.
    std::size_t add_key(const KeySpec& spec, const KeyFacts& facts);
    // Parent: a key of another backend (a key file, a PKCS#11 token key)
    // that the agent holds for GnuTLSKeyIsolation. The parent never loads
    // it (no key, module or login in its memory, so none in any process
    // it forks): `open` runs now in a short-lived child, after `prepare`,
    // to check it (its errors are thrown here, as mgs::Error); the agent
    // opens it again with AgentSetup::open_key (key files before it drops
    // root) and refuses a key whose public half differs. Returns the
    // signer for the workers: the key's public facts and an index. The
    // parent keeps `reference` and `options` (a PIN, a passphrase) to start
    // another agent; children wipe them.
    // `depends_on`: what else the key opens with (the PKCS#11 module list):
    // a restart that changes it, or the PIN, gets a new agent.
    std::shared_ptr<Signer> host_by_reference(
        const std::string& reference, const KeyOptions& options, const std::function<void()>& prepare,
        const std::function<std::shared_ptr<Signer>(const std::string&, const KeyOptions&)>& open,
        std::string_view depends_on = {});
    bool has_keys() const { return !keys_.empty() || !hosted_.empty(); }
    // Whether a hosted key is of this backend ("file", "pkcs11").
    bool hosts_backend(std::string_view backend) const;
    std::size_t tpm_key_count() const { return keys_.size(); }
    std::size_t hosted_key_count() const { return hosted_fp_.size(); }
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
    pid_t pid() const { return pid_; }

    // Parent, while a restart loads the configuration: the agent of the
    // previous generation, still running.
    void inherit(std::unique_ptr<RunningAgent> previous) { previous_ = std::move(previous); }
    // What the previous generation's check found for a key identical to
    // `spec`; std::nullopt when there is none, and then the previous agent
    // is stopped first, so that this key can be checked on the TPM. Never
    // for a persistent handle: another key may have been put there.
    std::optional<KeyFacts> known_facts(const KeySpec& spec);
    // Parent, once the configuration is loaded: take over the previous
    // agent if it holds exactly this generation's keys, in the same order
    // (so the same indices), was started with the same setup, and still
    // runs. False: it was stopped (if there was one) and the caller spawns
    // a new agent.
    bool adopt_previous(const AgentSetup& setup);
    // Parent, at a restart: the running agent, for the next generation.
    // This KeyAgent no longer owns it. Null when none runs.
    std::unique_ptr<RunningAgent> release();
    Bytes fingerprint() const;
    // Children: close the parent's copy of the listening socket, wipe
    // the key and SRK authorizations and destroy the hosted keys (only the
    // agent needs them).
    void close_listener_in_child();

    // True once spawn() ran in this process's ancestry: signers go through it.
    bool active() const { return listen_fd_ >= 0 || active_; }
    // Children: one signature by key `index`. Throws mgs::Error.
    Bytes sign(std::size_t index, const SignRequest& request);

private:
    class Serving; // what the agent's threads share (key_agent.cpp)
    [[noreturn]] void serve(const AgentSetup& setup, Serving* serving);
    std::shared_ptr<Signer> open_recipe(std::size_t i, const AgentSetup& setup) const;
    void wipe_recipes();
    int connect_client();

    std::vector<KeySpec> keys_;
    std::vector<std::pair<Bytes, KeyFacts>> facts_; // parallel to keys_
    // Hosted keys: request index hosted_key_bit | i. The signers exist in
    // the agent only.
    std::vector<std::shared_ptr<Signer>> hosted_;
    std::vector<std::string> hosted_backends_;
    std::vector<Bytes> hosted_fp_;
    // Keys hosted by reference (empty reference: inherited, in hosted_).
    struct Recipe {
        std::string reference;
        KeyOptions options;
        Bytes public_der; // what the parent's check found
    };
    std::vector<Recipe> recipes_; // parallel to hosted_
    std::unique_ptr<RunningAgent> previous_;
    Bytes setup_; // setup_fingerprint of the running agent's setup
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

// The key agent's side of its socket: who may connect, how long they may
// take to authenticate, and how requests are read and answered without the
// agent ever blocking on a client. No TPM code here (key_agent.cpp signs).
//
// What a local user who is not Apache can do to the agent: connect and be
// closed at once (SO_PEERCRED: only root, the agent's own user and Apache's
// User pass). What an Apache child that does not know the token can do:
// hold one of at most max_pending slots for at most auth_deadline (a new
// connection evicts the one that has waited longest). A full descriptor
// table pauses accepting instead of spinning on a readable listener.
#pragma once

#include "keystore/bytes.h"
#include "keystore/unique_fd.h"

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <functional>
#include <signal.h>
#include <span>
#include <string>
#include <vector>

namespace mgs::tpm {

struct AgentPolicy {
    std::span<const std::uint8_t> token; // the first message of every client
    std::vector<uid_t> allowed_uids;     // besides root and the agent's own user
    std::size_t max_pending = 64;        // connected but not yet authenticated
    std::chrono::milliseconds auth_deadline{1000};
    std::chrono::milliseconds accept_pause{100}; // after EMFILE and the like
    // Authenticated clients get a thread of their own (blocking on their
    // connection only), up to this many; the rest, and all when 0, are
    // served one request at a time by run_once. Threads let slow signers
    // (a network HSM, a TPM command) overlap: the handler must then be
    // thread-safe.
    std::size_t max_threads = 0;
};

// level as AgentLog: 0 error, 1 notice, 2 info.
using ConnectionLog = std::function<void(int level, const std::string& message)>;
// One request of an authenticated client; returns the reply.
using RequestHandler = std::function<Bytes(std::span<const std::uint8_t> request)>;

class AgentConnections {
public:
    AgentConnections(int listen_fd, AgentPolicy policy, ConnectionLog log);

    // Waits for activity (with `mask` as the signal mask while waiting, as
    // ppoll does), then accepts, authenticates, answers and expires. Returns
    // false when the wait was interrupted by a signal.
    bool run_once(const sigset_t* mask, const RequestHandler& handle);

    std::size_t pending() const;
    std::size_t trusted() const { return clients_.size() - pending(); }
    // Clients served by threads of their own right now.
    std::size_t threads() const { return threads_->load(); }

private:
    struct Client {
        UniqueFd fd;
        bool trusted = false;
        std::chrono::steady_clock::time_point deadline;
    };

    void accept_new(std::chrono::steady_clock::time_point now);
    bool peer_allowed(int fd);
    // false: close the connection.
    bool serve(Client& c, short revents, const RequestHandler& handle);
    // true: a thread serves the client now (its descriptor moved there).
    bool hand_off(Client& c, const RequestHandler& handle);
    void note(int level, const std::string& message); // rate-limited

    int listen_fd_;
    AgentPolicy policy_;
    ConnectionLog log_;
    std::vector<Client> clients_;
    std::vector<std::uint8_t> buf_;
    std::chrono::steady_clock::time_point accept_paused_until_{};
    std::chrono::steady_clock::time_point last_note_{};
    unsigned notes_suppressed_ = 0;
    // Shared with the client threads, which are detached: the agent ends
    // with _exit and never joins them.
    std::shared_ptr<std::atomic<std::size_t>> threads_ = std::make_shared<std::atomic<std::size_t>>(0);
};

} // namespace mgs::tpm

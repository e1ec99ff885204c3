#include "tpm/agent_connections.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

namespace mgs::tpm {

namespace {

constexpr std::size_t max_message = 16384;
using Clock = std::chrono::steady_clock;

bool same_token(std::span<const std::uint8_t> got, std::span<const std::uint8_t> token)
{
    // Constant time in the token's bytes.
    std::uint8_t diff = got.size() == token.size() ? 0 : 1;
    for (std::size_t k = 0; k < token.size() && k < got.size(); ++k)
        diff |= got[k] ^ token[k];
    return diff == 0;
}

// The client hung up (or its socket failed) while its request waited: it
// has given up, so the request is not signed.
bool client_gone(int fd)
{
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

// A trusted client's own thread: one request at a time on a blocking
// connection, until the client hangs up or stops reading.
void serve_on_thread(int raw_fd, RequestHandler handle, std::shared_ptr<std::atomic<std::size_t>> threads)
{
    UniqueFd fd(raw_fd);
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    std::vector<std::uint8_t> buf(max_message);
    for (;;) {
        ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || client_gone(fd.get()))
            break;
        Bytes reply;
        try {
            reply = handle({buf.data(), static_cast<std::size_t>(n)});
        } catch (...) {
            break; // the handler answers errors itself; this is out of memory
        }
        if (::send(fd.get(), reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL) !=
            static_cast<ssize_t>(reply.size()))
            break;
    }
    threads->fetch_sub(1);
}

} // namespace

AgentConnections::AgentConnections(int listen_fd, AgentPolicy policy, ConnectionLog log)
    : listen_fd_(listen_fd), policy_(std::move(policy)), log_(std::move(log)), buf_(max_message)
{
    // Accept in a loop until EAGAIN; never block on the listener.
    ::fcntl(listen_fd_, F_SETFL, ::fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
}

std::size_t AgentConnections::pending() const
{
    return static_cast<std::size_t>(std::count_if(clients_.begin(), clients_.end(), [](auto& c) { return !c.trusted; }));
}

void AgentConnections::note(int level, const std::string& message)
{
    // A local user can make these happen at will: at most one line a minute.
    auto now = Clock::now();
    if (last_note_ != Clock::time_point{} && now - last_note_ < std::chrono::minutes(1)) {
        ++notes_suppressed_;
        return;
    }
    std::string text = message;
    if (notes_suppressed_)
        text += " (" + std::to_string(notes_suppressed_) + " similar events in the last minute not logged)";
    notes_suppressed_ = 0;
    last_note_ = now;
    log_(level, text);
}

bool AgentConnections::peer_allowed(int fd)
{
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return false;
    if (cred.uid == 0 || cred.uid == ::geteuid() ||
        std::find(policy_.allowed_uids.begin(), policy_.allowed_uids.end(), cred.uid) != policy_.allowed_uids.end())
        return true;
    note(1, "key agent: refused a connection from uid " + std::to_string(cred.uid) + " (pid " +
                std::to_string(cred.pid) + "): only root and Apache's User may connect");
    return false;
}

void AgentConnections::accept_new(Clock::time_point now)
{
    // At most max_pending new connections per wake-up, so that a flood of
    // connections cannot keep the agent from its requests.
    for (std::size_t accepted = 0; accepted < policy_.max_pending; ++accepted) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                // The connection stays queued; retry after a pause rather than
                // spinning on a listener that stays readable.
                accept_paused_until_ = now + policy_.accept_pause;
                note(0, std::string("key agent: cannot accept connections: ") + std::strerror(errno) +
                            "; pausing");
            }
            return; // EAGAIN, ECONNABORTED, EINTR: nothing more now
        }
        UniqueFd owned(fd);
        if (!peer_allowed(fd))
            continue;
        // A real client sends its token right after connecting: it is
        // usually there already.
        ssize_t n = ::recv(fd, buf_.data(), buf_.size(), MSG_DONTWAIT);
        if (n > 0) {
            if (same_token({buf_.data(), static_cast<std::size_t>(n)}, policy_.token))
                clients_.push_back({std::move(owned), true, {}});
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            continue;
        if (pending() >= policy_.max_pending) {
            // Full: the connection that has waited longest makes room, so
            // idle connections cannot lock real clients out.
            auto oldest = std::min_element(clients_.begin(), clients_.end(), [](auto& a, auto& b) {
                return !a.trusted && (b.trusted || a.deadline < b.deadline);
            });
            clients_.erase(oldest);
        }
        clients_.push_back({std::move(owned), false, now + policy_.auth_deadline});
    }
}

bool AgentConnections::serve(Client& c, short revents, const RequestHandler& handle)
{
    if (!(revents & POLLIN))
        return false; // POLLHUP or POLLERR without data
    ssize_t n = ::recv(c.fd.get(), buf_.data(), buf_.size(), MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0)
        return false;
    std::span<const std::uint8_t> msg(buf_.data(), static_cast<std::size_t>(n));
    if (!c.trusted) {
        c.trusted = same_token(msg, policy_.token);
        return c.trusted;
    }
    if ((revents & (POLLHUP | POLLRDHUP)) || client_gone(c.fd.get()))
        return false;
    Bytes reply = handle(msg);
    // The reply is small and the client waits for it: if it does not fit in
    // the socket now, the client is not reading, and it is dropped.
    return ::send(c.fd.get(), reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL) ==
           static_cast<ssize_t>(reply.size());
}

bool AgentConnections::hand_off(Client& c, const RequestHandler& handle)
{
    if (threads_->load() >= policy_.max_threads)
        return false;
    threads_->fetch_add(1);
    try {
        std::thread(serve_on_thread, c.fd.get(), handle, threads_).detach();
        c.fd.release(); // the thread's now
        return true;
    } catch (...) {
        threads_->fetch_sub(1); // no thread (EAGAIN, no memory)
        return false;
    }
}

bool AgentConnections::run_once(const sigset_t* mask, const RequestHandler& handle)
{
    auto now = Clock::now();
    bool listening = now >= accept_paused_until_;
    Clock::time_point wake = Clock::time_point::max();
    if (!listening)
        wake = accept_paused_until_;
    for (auto& c : clients_)
        if (!c.trusted)
            wake = std::min(wake, c.deadline);

    std::vector<pollfd> fds;
    fds.reserve(clients_.size() + 1);
    fds.push_back({listen_fd_, static_cast<short>(listening ? POLLIN : 0), 0});
    for (auto& c : clients_)
        fds.push_back({c.fd.get(), POLLIN | POLLRDHUP, 0});

    timespec ts{};
    timespec* timeout = nullptr;
    if (wake != Clock::time_point::max()) {
        auto left = std::max(Clock::duration::zero(), wake - now);
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        ts.tv_sec = static_cast<time_t>(ns / 1000000000);
        ts.tv_nsec = static_cast<long>(ns % 1000000000);
        timeout = &ts;
    }
    if (::ppoll(fds.data(), fds.size(), timeout, mask) < 0)
        return errno != EINTR;

    // Clients first (fds[i + 1] is clients_[i]), then new connections, so
    // the indices still match while serving.
    std::vector<bool> keep(clients_.size(), true);
    for (std::size_t i = 0; i < clients_.size(); ++i)
        if (fds[i + 1].revents)
            keep[i] = serve(clients_[i], fds[i + 1].revents, handle);
    now = Clock::now();
    for (std::size_t i = 0; i < clients_.size(); ++i)
        if (!clients_[i].trusted && now >= clients_[i].deadline)
            keep[i] = false; // too slow to authenticate
    std::size_t out = 0;
    for (std::size_t i = 0; i < clients_.size(); ++i)
        if (keep[i]) {
            if (out != i)
                clients_[out] = std::move(clients_[i]);
            ++out;
        }
    clients_.resize(out);
    if (fds[0].revents & POLLIN)
        accept_new(now);
    if (policy_.max_threads > 0) {
        // Newly trusted clients move to threads of their own (when the
        // thread has started, c.fd is empty).
        // One that gets no thread is closed (its worker fails that
        // handshake at once, and its next one reconnects): the main thread
        // never signs, so a hung signer cannot stop it accepting or ending.
        std::erase_if(clients_, [&](Client& c) {
            if (!c.trusted || hand_off(c, handle))
                return c.trusted;
            note(0, "key agent: " + std::to_string(threads_->load()) +
                        " clients already have a thread each (the most it serves at once); closing another");
            return true;
        });
    }
    return true;
}

} // namespace mgs::tpm

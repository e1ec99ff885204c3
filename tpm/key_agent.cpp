#include "tpm/key_agent.h"

#include "keystore/hex.h"
#include "keystore/unique_fd.h"

#include "tpm/agent_message.h"
#include "tpm/tls_signing.h"

#include <gnutls/crypto.h>

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>

namespace mgs::tpm {

namespace {

// One request: which key, which TLS scheme, and the bytes GnuTLS gave.
struct RequestHeader {
    std::uint32_t key;
    std::int32_t scheme;
    std::uint32_t kind;
    std::uint32_t flags;
};
constexpr std::size_t max_message = 16384;
constexpr int client_timeout_s = 5;
// How often the agent may try to reach a TPM that went away.
constexpr auto reconnect_interval = std::chrono::milliseconds(250);

sockaddr_un abstract_address(const std::string& name, socklen_t& len)
{
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    a.sun_path[0] = '\0';
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    return a;
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// The agent's view of one TPM (keys may name different TCTIs).
struct TpmLink {
    std::string tcti;
    std::vector<std::size_t> keys;
    std::unique_ptr<TpmContext> ctx;
    std::map<std::size_t, std::unique_ptr<LoadedKey>> loaded;
    std::chrono::steady_clock::time_point last_attempt{};
    bool up = true; // the parent just used it to check every key
    std::string failure;

    void drop()
    {
        loaded.clear(); // before the context they live in
        ctx.reset();
    }
};

class AgentLoop {
public:
    AgentLoop(const std::vector<KeySpec>& keys, const AgentLog& log) : keys_(keys), log_(log)
    {
        for (std::size_t i = 0; i < keys.size(); ++i) {
            auto it = std::find_if(links_.begin(), links_.end(), [&](auto& l) { return l->tcti == keys[i].tcti; });
            if (it == links_.end()) {
                links_.push_back(std::make_unique<TpmLink>());
                links_.back()->tcti = keys[i].tcti;
                it = links_.end() - 1;
            }
            (*it)->keys.push_back(i);
            link_of_.push_back(it->get());
        }
        for (auto& l : links_) {
            try {
                connect(*l);
            } catch (const Error& e) {
                mark_down(*l, e.what());
            }
        }
    }

    Bytes sign(std::size_t index, const SignRequest& req)
    {
        if (index >= keys_.size())
            throw Error("no such TPM key");
        TpmLink& link = *link_of_[index];
        for (int attempt = 0; attempt < 2; ++attempt) {
            try {
                if (!link.ctx) {
                    if (!link.up && std::chrono::steady_clock::now() - link.last_attempt < reconnect_interval)
                        throw Error(link.failure);
                    connect(link);
                }
                Bytes sig = sign_for_tls(*link.loaded.at(index), req);
                mark_up(link);
                return sig;
            } catch (const TpmError& e) {
                if (!is_link_failure(e.rc()))
                    throw Error(keys_[index].reference + ": " + e.what());
                // The link broke under a loaded key: reconnect once now.
                link.drop();
                mark_down(link, e.what());
                link.last_attempt = {};
            } catch (const Error& e) {
                link.drop();
                mark_down(link, e.what());
                throw Error(keys_[index].reference + ": " + link.failure);
            }
        }
        throw Error(keys_[index].reference + ": " + link.failure);
    }

private:
    void connect(TpmLink& link)
    {
        link.last_attempt = std::chrono::steady_clock::now();
        link.drop();
        link.ctx = std::make_unique<TpmContext>(link.tcti, 2000);
        for (std::size_t i : link.keys)
            link.loaded[i] = std::make_unique<LoadedKey>(*link.ctx, keys_[i]);
    }

    void mark_down(TpmLink& link, const std::string& why)
    {
        link.failure = "the TPM at " + where(link) + " cannot sign: " + why;
        if (link.up)
            log_(0, "TPM key agent: " + link.failure + "; handshakes with its keys fail until it is back");
        link.up = false;
    }

    void mark_up(TpmLink& link)
    {
        if (!link.up)
            log_(1, "TPM key agent: the TPM at " + where(link) + " answers again; its keys sign");
        link.up = true;
    }

    static std::string where(const TpmLink& link) { return link.tcti.empty() ? "(tpm2-tss default)" : link.tcti; }

    const std::vector<KeySpec>& keys_;
    const AgentLog& log_;
    std::vector<std::unique_ptr<TpmLink>> links_;
    std::vector<TpmLink*> link_of_;
};

} // namespace

std::size_t KeyAgent::add_key(const KeySpec& spec)
{
    keys_.push_back(spec);
    return keys_.size() - 1;
}

pid_t KeyAgent::spawn(const AgentLog& log)
{
    if (listen_fd_ < 0) {
        if (gnutls_rnd(GNUTLS_RND_KEY, token_, sizeof token_) < 0)
            throw Error("TPM key agent: no random token");
        std::uint8_t name[12];
        gnutls_rnd(GNUTLS_RND_NONCE, name, sizeof name);
        address_ = "mod_gnutls-tpm-agent-" + mgs::hex(name);
        UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        if (!fd)
            throw Error("TPM key agent: " + errno_text("socket"));
        socklen_t len;
        sockaddr_un a = abstract_address(address_, len);
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) < 0 || ::listen(fd.get(), 128) < 0)
            throw Error("TPM key agent: " + errno_text("bind/listen"));
        listen_fd_ = fd.release();
    }
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0)
        throw Error("TPM key agent: " + errno_text("fork"));
    if (pid == 0) {
        // Apache's parent handles these signals to restart; the agent simply ends.
        for (int sig : {SIGTERM, SIGHUP, SIGUSR1, SIGINT, SIGWINCH, SIGCHLD, SIGALRM})
            ::signal(sig, SIG_DFL);
        ::signal(SIGPIPE, SIG_IGN);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent)
            ::_exit(0);
        serve(log);
    }
    pid_ = pid;
    active_ = true;
    return pid;
}

namespace {
volatile sig_atomic_t stop_requested = 0;
void request_stop(int) { stop_requested = 1; }
} // namespace

void KeyAgent::serve(const AgentLog& log)
{
    // SIGTERM ends the loop so that the loaded keys are flushed: a TPM
    // without a resource manager (swtpm) keeps them otherwise, and has few
    // slots. It is blocked except while waiting in ppoll, so none is lost.
    struct sigaction sa{};
    sa.sa_handler = request_stop;
    ::sigaction(SIGTERM, &sa, nullptr);
    sigset_t term, waiting;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &term, &waiting);
    sigdelset(&waiting, SIGTERM);
    try {
        AgentLoop loop(keys_, log);
        std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
        std::vector<bool> trusted{true};
        std::vector<std::uint8_t> buf(max_message);
        while (!stop_requested) {
            if (::ppoll(fds.data(), fds.size(), nullptr, &waiting) < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            if (fds[0].revents & POLLIN) {
                int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c >= 0) {
                    fds.push_back({c, POLLIN, 0});
                    trusted.push_back(false);
                }
            }
            for (std::size_t i = 1; i < fds.size(); ++i) {
                if (!fds[i].revents)
                    continue;
                ssize_t n = ::recv(fds[i].fd, buf.data(), buf.size(), 0);
                bool keep = n > 0;
                if (keep && !trusted[i]) {
                    // Constant-time comparison of the token.
                    std::uint8_t diff = n == static_cast<ssize_t>(sizeof token_) ? 0 : 1;
                    for (std::size_t k = 0; k < sizeof token_ && k < static_cast<std::size_t>(n); ++k)
                        diff |= buf[k] ^ token_[k];
                    keep = diff == 0;
                    trusted[i] = keep;
                } else if (keep) {
                    Bytes reply;
                    if (static_cast<std::size_t>(n) < sizeof(RequestHeader)) {
                        reply = error_answer("malformed request");
                    } else {
                        RequestHeader h;
                        std::memcpy(&h, buf.data(), sizeof h);
                        SignRequest req{static_cast<gnutls_sign_algorithm_t>(h.scheme),
                                        static_cast<SignInput>(h.kind),
                                        {buf.data() + sizeof h, static_cast<std::size_t>(n) - sizeof h},
                                        h.flags};
                        try {
                            reply = ok_answer(loop.sign(h.key, req));
                        } catch (const std::exception& e) {
                            reply = error_answer(e.what());
                        }
                    }
                    keep = ::send(fds[i].fd, reply.data(), reply.size(), MSG_NOSIGNAL) ==
                           static_cast<ssize_t>(reply.size());
                }
                if (!keep) {
                    ::close(fds[i].fd);
                    fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
                    trusted.erase(trusted.begin() + static_cast<std::ptrdiff_t>(i));
                    --i;
                }
            }
        }
        ::_exit(0);
    } catch (const std::exception& e) {
        log(0, std::string("TPM key agent stopped: ") + e.what());
    }
    ::_exit(1);
}

void KeyAgent::stop()
{
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        int status;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }
    if (listen_fd_ >= 0)
        ::close(listen_fd_);
    listen_fd_ = -1;
    active_ = false;
}

void KeyAgent::close_listener_in_child()
{
    if (listen_fd_ >= 0)
        ::close(listen_fd_);
    listen_fd_ = -1;
    pid_ = -1; // not ours to stop
}

int KeyAgent::connect_client()
{
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!fd)
        throw Error("TPM key agent: " + errno_text("socket"));
    timeval tv{client_timeout_s, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    socklen_t len;
    sockaddr_un a = abstract_address(address_, len);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), len) < 0 ||
        ::send(fd.get(), token_, sizeof token_, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof token_))
        throw Error(errno_text("cannot reach the TPM key agent"));
    return fd.release();
}

Bytes KeyAgent::sign(std::size_t index, const SignRequest& req)
{
    Bytes msg(sizeof(RequestHeader));
    RequestHeader h{static_cast<std::uint32_t>(index), static_cast<std::int32_t>(req.scheme),
                    static_cast<std::uint32_t>(req.kind), req.gnutls_flags};
    std::memcpy(msg.data(), &h, sizeof h);
    msg.insert(msg.end(), req.input.begin(), req.input.end());

    // A pooled connection may have died with a previous agent: one retry on
    // a fresh connection.
    for (int attempt = 0; attempt < 2; ++attempt) {
        int fd = -1;
        bool pooled = false;
        {
            std::lock_guard lock(pool_mutex_);
            if (pool_pid_ != ::getpid()) {
                idle_.clear(); // the parent's connections (none, normally)
                pool_pid_ = ::getpid();
            }
            if (!idle_.empty()) {
                fd = idle_.back();
                idle_.pop_back();
                pooled = true;
            }
        }
        if (fd < 0)
            fd = connect_client();
        std::vector<std::uint8_t> buf(max_message);
        ssize_t n = -1;
        if (::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(msg.size()))
            n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n <= 0) {
            std::string why = n == 0 ? std::string("the TPM key agent closed the connection")
                                     : errno_text("the TPM key agent did not answer");
            ::close(fd);
            if (pooled && attempt == 0)
                continue;
            throw Error(why);
        }
        {
            std::lock_guard lock(pool_mutex_);
            idle_.push_back(fd);
        }
        return open_answer({buf.data(), static_cast<std::size_t>(n)}, "the TPM key agent sent nothing");
    }
    throw Error("the TPM key agent is unreachable");
}

} // namespace mgs::tpm

// The key agent's connection policy, on a real abstract UNIX socket: the
// token, the authentication deadline, the pending cap, peer credentials,
// and requests whose client gave up.
#include "tpm/agent_connections.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <thread>

namespace mgs::test {
namespace {

using namespace std::chrono_literals;

sockaddr_un address(const std::string& name, socklen_t& len)
{
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    return a;
}

class Agent {
public:
    explicit Agent(tpm::AgentPolicy policy)
        : name_("mgs-test-agent-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))
    {
        listen_ = UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        socklen_t len;
        sockaddr_un a = address(name_, len);
        EXPECT_EQ(::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), len), 0);
        EXPECT_EQ(::listen(listen_.get(), 128), 0);
        policy.token = token_;
        thread_ = std::thread([this, policy] {
            tpm::AgentConnections c(listen_.get(), policy, [](int, const std::string&) {});
            sigset_t mask;
            sigemptyset(&mask);
            while (!stop_) {
                c.run_once(&mask, [this](std::span<const std::uint8_t> req) {
                    const int n = ++handled_;
                    if (slow_first_ && n == 1)
                        std::this_thread::sleep_for(400ms);
                    if (first_waits_for_second_ && n == 1) {
                        // Released by a second request: only if another
                        // thread handles it meanwhile (1 s cap otherwise).
                        auto until = std::chrono::steady_clock::now() + 1s;
                        while (handled_ < 2 && std::chrono::steady_clock::now() < until)
                            std::this_thread::sleep_for(1ms);
                        overlapped_ = handled_ >= 2;
                    }
                    return Bytes(req.begin(), req.end()); // echo
                });
                pending_ = c.pending();
            }
        });
    }
    ~Agent()
    {
        stop_ = true;
        UniqueFd wake = connect(); // ends the wait
        thread_.join();
    }

    UniqueFd connect() const
    {
        UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        socklen_t len;
        sockaddr_un a = address(name_, len);
        EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), len), 0);
        timeval tv{3, 0};
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        return fd;
    }
    UniqueFd authenticated() const
    {
        UniqueFd fd = connect();
        EXPECT_EQ(::send(fd.get(), token_, sizeof token_, 0), static_cast<ssize_t>(sizeof token_));
        return fd;
    }

    std::uint8_t token_[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    std::atomic<int> handled_{0};
    std::atomic<std::size_t> pending_{0};
    std::atomic<bool> slow_first_{false};
    std::atomic<bool> first_waits_for_second_{false};
    std::atomic<bool> overlapped_{false};

private:
    static inline int counter_ = 0;
    std::string name_;
    UniqueFd listen_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// The agent's answer to one request: the echoed bytes, or "" if it closed.
std::string ask(int fd, const std::string& request)
{
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
        return "";
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

bool closed_by_peer(int fd)
{
    char c;
    return ::recv(fd, &c, 1, 0) == 0;
}

TEST(AgentConnections, AnswersAClientWithTheToken)
{
    Agent agent({});
    UniqueFd c = agent.authenticated();
    EXPECT_EQ(ask(c.get(), "sign this"), "sign this");
    EXPECT_EQ(ask(c.get(), "and this"), "and this");
}

TEST(AgentConnections, ClosesAClientWithAWrongToken)
{
    Agent agent({});
    UniqueFd c = agent.connect();
    std::uint8_t wrong[32] = {1, 2, 3, 4, 5, 6, 7, 8, 0};
    ASSERT_EQ(::send(c.get(), wrong, sizeof wrong, 0), 32);
    EXPECT_TRUE(closed_by_peer(c.get()));
    EXPECT_EQ(agent.handled_, 0);
}

TEST(AgentConnections, ClosesAClientThatDoesNotAuthenticateInTime)
{
    tpm::AgentPolicy p;
    p.auth_deadline = 200ms;
    Agent agent(p);
    UniqueFd c = agent.connect();
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(closed_by_peer(c.get())); // before the 3 s receive timeout
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2500ms);
}

TEST(AgentConnections, CapsConnectionsWaitingToAuthenticate)
{
    tpm::AgentPolicy p;
    p.max_pending = 4;
    p.auth_deadline = 800ms;
    Agent agent(p);
    std::vector<UniqueFd> idle;
    for (int i = 0; i < 20; ++i)
        idle.push_back(agent.connect());
    std::this_thread::sleep_for(200ms);
    EXPECT_LE(agent.pending_.load(), 4u);
    // A real client that comes after them is served at once.
    UniqueFd c = agent.authenticated();
    EXPECT_EQ(ask(c.get(), "still served"), "still served");
}

TEST(AgentConnections, RefusesAnotherUser)
{
    Agent agent({});
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0)
            ::_exit(3);
        UniqueFd c = agent.authenticated();
        ::_exit(ask(c.get(), "let me in").empty() ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "3: cannot become nobody; 1: nobody was answered";
    EXPECT_EQ(agent.handled_, 0);
}

TEST(AgentConnections, DropsARequestWhoseClientGaveUp)
{
    Agent agent({});
    agent.slow_first_ = true;
    UniqueFd busy = agent.authenticated();
    UniqueFd quitter = agent.authenticated();
    ASSERT_EQ(ask(busy.get(), "ping"), "ping"); // authenticated both
    agent.handled_ = 0;
    std::thread first([&] { EXPECT_EQ(ask(busy.get(), "slow"), "slow"); });
    std::this_thread::sleep_for(100ms); // the agent is in the slow request
    ASSERT_EQ(::send(quitter.get(), "never mind", 10, 0), 10);
    quitter.reset(); // gives up before the agent gets to it
    first.join();
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(agent.handled_, 1);
}

TEST(AgentConnections, TrustedClientsOnThreadsOfTheirOwnOverlap)
{
    // A slow signer (a network HSM) must not hold the other workers'
    // requests: with max_threads, the first request is still being handled
    // when the second one is.
    tpm::AgentPolicy policy;
    policy.max_threads = 4;
    Agent agent(policy);
    agent.first_waits_for_second_ = true;
    UniqueFd first = agent.authenticated();
    UniqueFd second = agent.authenticated();
    std::thread waiting([&] { EXPECT_EQ(ask(first.get(), "first"), "first"); });
    while (agent.handled_ < 1)
        std::this_thread::sleep_for(1ms);
    EXPECT_EQ(ask(second.get(), "second"), "second");
    waiting.join();
    EXPECT_TRUE(agent.overlapped_);
}

TEST(AgentConnections, WithoutThreadsRequestsTakeTurns)
{
    // The same without max_threads: the second request waits for the
    // first (which gives up waiting after its cap), so the test above can fail.
    Agent agent({});
    agent.first_waits_for_second_ = true;
    UniqueFd first = agent.authenticated();
    UniqueFd second = agent.authenticated();
    std::thread waiting([&] { EXPECT_EQ(ask(first.get(), "first"), "first"); });
    while (agent.handled_ < 1)
        std::this_thread::sleep_for(1ms);
    EXPECT_EQ(ask(second.get(), "second"), "second");
    waiting.join();
    EXPECT_FALSE(agent.overlapped_);
}

// CPU seconds a process has used (utime + stime from /proc).
double cpu_seconds(pid_t pid)
{
    std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (!f)
        return -1;
    char buf[1024] = {};
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    std::string stat(buf, n);
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    unsigned long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14)
            utime = std::stoul(field);
        if (i == 15)
            stime = std::stoul(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

TEST(AgentConnections, PausesInsteadOfSpinningWhenOutOfDescriptors)
{
    const std::string name = "mgs-test-agent-emfile-" + std::to_string(::getpid());
    UniqueFd listen(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    socklen_t len;
    sockaddr_un a = address(name, len);
    ASSERT_EQ(::bind(listen.get(), reinterpret_cast<sockaddr*>(&a), len), 0);
    ASSERT_EQ(::listen(listen.get(), 128), 0);
    static std::uint8_t token[32] = {7};
    pid_t pid = ::fork();
    if (pid == 0) {
        // Room for a few clients only: fill the table, then free four.
        std::vector<int> filler;
        for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;)
            filler.push_back(fd);
        for (int i = 0; i < 4 && !filler.empty(); ++i) {
            ::close(filler.back());
            filler.pop_back();
        }
        tpm::AgentPolicy p;
        p.token = token;
        tpm::AgentConnections c(listen.get(), p, [](int, const std::string&) {});
        sigset_t mask;
        sigemptyset(&mask);
        for (;;)
            c.run_once(&mask, [](std::span<const std::uint8_t> r) { return Bytes(r.begin(), r.end()); });
    }
    std::vector<UniqueFd> clients;
    for (int i = 0; i < 12; ++i) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), len), 0);
        ASSERT_EQ(::send(fd.get(), token, sizeof token, 0), 32);
        clients.push_back(std::move(fd));
    }
    std::this_thread::sleep_for(300ms);
    double before = cpu_seconds(pid);
    std::this_thread::sleep_for(1s);
    double used = cpu_seconds(pid) - before;
    // A loop spinning on the readable listener uses the whole second.
    EXPECT_LT(used, 0.3);
    // The clients it did accept are answered.
    timeval tv{3, 0};
    ::setsockopt(clients[0].get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    EXPECT_EQ(ask(clients[0].get(), "first"), "first");
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
}

} // namespace
} // namespace mgs::test

#include "keystore/child_process.h"

#include "keystore/error.h"
#include "keystore/unique_fd.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace mgs {

ChildOutput run_child(const std::string& what, const std::function<void(int fd)>& body, std::size_t max,
                      std::optional<std::chrono::milliseconds> deadline)
{
    using Clock = std::chrono::steady_clock;
    const auto until = deadline ? Clock::now() + *deadline : Clock::time_point::max();
    auto left_ms = [&]() -> int {
        if (!deadline)
            return -1;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
        return left > 0 ? static_cast<int>(left) : 0;
    };
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw Error(what + ": pipe: " + std::strerror(errno));
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    pid_t pid = ::fork();
    if (pid < 0)
        throw Error(what + ": fork: " + std::strerror(errno));
    if (pid == 0) {
        if (deadline)
            ::setpgid(0, 0); // so that the deadline kills what it starts too
        read_end.reset();
        try {
            body(write_end.get());
        } catch (...) {
        }
        // No exit handlers: they belong to the parent (Apache's, GnuTLS's).
        ::_exit(127);
    }
    write_end.reset();
    ChildOutput out;
    out.output.reserve(max); // no reallocation leaves copies of a secret behind
    if (deadline)
        ::setpgid(pid, pid); // either side may run first
    std::uint8_t buf[4096];
    for (;;) {
        pollfd p{read_end.get(), POLLIN, 0};
        int ready = ::poll(&p, 1, left_ms());
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready == 0) {
            out.timed_out = true;
            break;
        }
        ssize_t n = ::read(read_end.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        std::size_t keep = std::min(static_cast<std::size_t>(n), max - std::min(max, out.output.size()));
        out.output.insert(out.output.end(), buf, buf + keep);
    }
    read_end.reset();
    explicit_bzero(buf, sizeof buf);
    // The output ended (or the deadline came): the child may still run.
    while (!out.timed_out) {
        pid_t r = ::waitpid(pid, &out.status, deadline ? WNOHANG : 0);
        if (r == pid)
            return out;
        if (r < 0 && errno != EINTR)
            return out;
        if (r == 0) {
            if (left_ms() == 0)
                out.timed_out = true;
            else
                ::usleep(10000);
        }
    }
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &out.status, 0) < 0 && errno == EINTR) {
    }
    return out;
}

std::string describe_exit(int status)
{
    return WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                             : "was killed by signal " + std::to_string(WTERMSIG(status));
}

void write_all(int fd, std::span<const std::uint8_t> data)
{
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        done += static_cast<std::size_t>(n);
    }
}

} // namespace mgs

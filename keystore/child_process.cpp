#include "keystore/child_process.h"

#include "keystore/error.h"
#include "keystore/unique_fd.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace mgs {

ChildOutput run_child(const std::string& what, const std::function<void(int fd)>& body, std::size_t max)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw Error(what + ": pipe: " + std::strerror(errno));
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    pid_t pid = ::fork();
    if (pid < 0)
        throw Error(what + ": fork: " + std::strerror(errno));
    if (pid == 0) {
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
    std::uint8_t buf[4096];
    for (;;) {
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
    while (::waitpid(pid, &out.status, 0) < 0 && errno == EINTR) {
    }
    return out;
}

std::string describe_exit(int status)
{
    return WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                             : "was killed by signal " + std::to_string(WTERMSIG(status));
}

} // namespace mgs

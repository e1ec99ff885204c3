#include "keystore/secret_source.h"

#include "keystore/error.h"
#include "keystore/file_io.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string_view>
#include <sys/wait.h>
#include <unistd.h>

namespace mgs {

namespace {

Secret first_line(std::string_view text)
{
    auto end = text.find_first_of("\r\n");
    return Secret(text.substr(0, end));
}

Secret run_program(const std::string& program)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw Error(std::string("exec:") + program + ": pipe: " + std::strerror(errno));
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw Error(std::string("exec:") + program + ": fork: " + std::strerror(errno));
    }
    if (pid == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        ::execl("/bin/sh", "sh", "-c", program.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(fds[1]);
    std::string out;
    char buf[512];
    for (;;) {
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (out.size() < 4096)
            out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    explicit_bzero(buf, sizeof buf);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    Secret value = first_line(out);
    explicit_bzero(out.data(), out.size());
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                            : "was killed by signal " + std::to_string(WTERMSIG(status));
        throw Error("exec:" + program + " " + how);
    }
    if (value.empty())
        throw Error("exec:" + program + " printed no PIN");
    return value;
}

} // namespace

void check_secret_source_syntax(const std::string& spec)
{
    for (std::string_view prefix : {"file:", "env:", "exec:"})
        if (spec.starts_with(prefix) && spec.size() > prefix.size())
            return;
    throw Error("'" + spec + "' is not file:PATH, exec:PROGRAM or env:VARIABLE");
}

Secret read_secret_source(const std::string& spec)
{
    check_secret_source_syntax(spec);
    if (spec.starts_with("file:")) {
        Bytes data = read_file(spec.substr(5));
        Secret value = first_line({reinterpret_cast<const char*>(data.data()), data.size()});
        explicit_bzero(data.data(), data.size());
        if (value.empty())
            throw Error(spec + " is empty");
        return value;
    }
    if (spec.starts_with("env:")) {
        const char* v = std::getenv(spec.c_str() + 4);
        if (!v || !*v)
            throw Error("environment variable " + spec.substr(4) + " is not set or empty");
        return Secret(v);
    }
    return run_program(spec.substr(5));
}

} // namespace mgs

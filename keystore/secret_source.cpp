#include "keystore/secret_source.h"

#include "keystore/child_process.h"
#include "keystore/error.h"
#include "keystore/file_io.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
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
    ChildOutput child = run_child(
        "exec:" + program,
        [&](int fd) {
            ::dup2(fd, STDOUT_FILENO);
            ::execl("/bin/sh", "sh", "-c", program.c_str(), static_cast<char*>(nullptr));
        },
        4096);
    Secret value = first_line({reinterpret_cast<const char*>(child.output.data()), child.output.size()});
    explicit_bzero(child.output.data(), child.output.size());
    if (!WIFEXITED(child.status) || WEXITSTATUS(child.status) != 0)
        throw Error("exec:" + program + " " + describe_exit(child.status));
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

#include "keystore/secret_source.h"

#include "keystore/child_process.h"
#include "keystore/error.h"
#include "keystore/file_io.h"

#include <chrono>
#include <cerrno>
#include <fcntl.h>
#include <vector>
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
    // Built before the fork: the child only execs.
    std::vector<std::string> env{std::string("PATH=") + exec_secret_path, "LANG=C"};
    for (const char* keep : {"CREDENTIALS_DIRECTORY", "TPM2TOOLS_TCTI"})
        if (const char* v = std::getenv(keep))
            env.push_back(std::string(keep) + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    ChildOutput child = run_child(
        "exec:" + program,
        [&](int fd) {
            ::dup2(fd, STDOUT_FILENO);
            int null = ::open("/dev/null", O_RDONLY);
            if (null >= 0)
                ::dup2(null, STDIN_FILENO);
            ::execle("/bin/sh", "sh", "-c", program.c_str(), static_cast<char*>(nullptr), envp.data());
        },
        4096, std::chrono::seconds(exec_secret_deadline_s));
    if (child.timed_out) {
        explicit_bzero(child.output.data(), child.output.size()); // what it printed before the deadline
        throw Error("exec:" + program + " did not finish within " + std::to_string(exec_secret_deadline_s) +
                    " s; it was killed");
    }
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
        Secret value(v);
        // Apache's children, CGI scripts and piped loggers would inherit it.
        explicit_bzero(const_cast<char*>(v), std::strlen(v));
        ::unsetenv(spec.c_str() + 4);
        return value;
    }
    return run_program(spec.substr(5));
}

Secret SecretSourceCache::read(const std::string& spec)
{
    std::lock_guard lock(mutex_);
    if (auto it = values_.find(spec); it != values_.end())
        return it->second;
    Secret value = read_secret_source(spec);
    values_.emplace(spec, value);
    return value;
}

void SecretSourceCache::clear()
{
    std::lock_guard lock(mutex_);
    values_.clear(); // each Secret wipes itself
}

} // namespace mgs

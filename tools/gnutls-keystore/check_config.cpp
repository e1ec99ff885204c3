#include "tools/gnutls-keystore/check_config.h"

#include "keystore/error.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace mgs::tool {

int run_check_config(const Options& o)
{
    std::vector<std::string> args = {o.httpd, "-t", "-D", "GNUTLS_KEY_REPORT"};
    args.insert(args.end(), o.httpd_args.begin(), o.httpd_args.end());
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    if (int rc = ::posix_spawnp(&pid, o.httpd.c_str(), nullptr, nullptr, argv.data(), environ); rc != 0)
        throw Error("cannot run " + o.httpd + ": " + std::strerror(rc) + " (--httpd names Apache's control program)");
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r != pid)
        throw Error("cannot wait for " + o.httpd + ": " + std::strerror(errno));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

} // namespace mgs::tool

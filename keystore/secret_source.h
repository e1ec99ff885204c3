// Where a PIN comes from when it is not written in httpd.conf:
// "file:PATH" (first line of the file), "env:VARIABLE" (unset once read, so
// CGI scripts and piped loggers started later do not inherit it),
// "exec:PROGRAM" (first line the program prints; it must exit 0 within
// exec_secret_deadline_s, and runs with a minimal environment).
#pragma once

#include "keystore/secret.h"

#include <map>
#include <mutex>
#include <string>

namespace mgs {

// Throws mgs::Error when the form is unknown (for configtest).
void check_secret_source_syntax(const std::string& spec);
// Throws mgs::Error naming the source (never the value) on failure.
Secret read_secret_source(const std::string& spec);

// An exec: program that has not printed and exited by then is killed (with
// the processes it started) and startup fails.
inline constexpr int exec_secret_deadline_s = 10;
// What an exec: program's environment holds: PATH, LANG=C and, when Apache
// has them, systemd's CREDENTIALS_DIRECTORY (for systemd-creds) and
// TPM2TOOLS_TCTI; nothing else of Apache's environment.
inline constexpr const char* exec_secret_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Each source read once per configuration load, however many virtual hosts
// name it (and an env: variable is gone after the first read): Apache's
// glue keeps one across its two startup passes and clears it (wiping the
// values) once the keys have loaded.
class SecretSourceCache {
public:
    Secret read(const std::string& spec);
    void clear();

private:
    std::mutex mutex_;
    std::map<std::string, Secret> values_;
};

} // namespace mgs

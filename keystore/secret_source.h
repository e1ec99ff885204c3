// Where a PIN comes from when it is not written in httpd.conf:
// "file:PATH" (first line of the file), "env:VARIABLE", "exec:PROGRAM"
// (first line the program prints; it must exit 0).
#pragma once

#include "keystore/secret.h"

#include <string>

namespace mgs {

// Throws mgs::Error when the form is unknown (for configtest).
void check_secret_source_syntax(const std::string& spec);
// Throws mgs::Error naming the source (never the value) on failure.
Secret read_secret_source(const std::string& spec);

} // namespace mgs

// gnutls-keystore check-config: the key check for a whole Apache
// configuration, done by the module itself (httpd/key_report.h).
#pragma once

#include "tools/gnutls-keystore/options.h"

namespace mgs::tool {

// Runs `httpd -t -D GNUTLS_KEY_REPORT httpd_args...`, whose output (the
// module's report, Apache's errors) goes to ours; 0 when it succeeds.
int run_check_config(const Options& options);

} // namespace mgs::tool

// What other modules ask a TLS module: is this connection HTTPS, what is
// the URL scheme and default port (mod_ssl's optional functions and 2.4's
// ssl hooks).
#pragma once

#include "httpd/apache.h"

namespace mgs::httpd {

void register_ssl_hooks();

} // namespace mgs::httpd

// A section on mod_status's server-status page: the GnuTLS version, and per
// TLS virtual host the certificate, the key's backend and health, and the
// session cache.
#pragma once

#include "httpd/apache.h"

namespace mgs::httpd {

void register_status_page();
// For the status page: the session cache's own status output.
void cache_status(request_rec* r, int flags);

} // namespace mgs::httpd

// Builds every TLS-enabled server's certificate credentials, keys and
// priorities once the configuration is read (check_config hook, which also
// runs for `apachectl configtest`), and on every graceful restart.
#pragma once

#include "httpd/apache.h"

namespace mgs::httpd {

int check_config(apr_pool_t* pconf, apr_pool_t* plog, apr_pool_t* ptemp, server_rec* base);

} // namespace mgs::httpd

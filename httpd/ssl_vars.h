// SSL_* variables for other modules: mod_ssl's ssl_var_lookup optional
// function, 2.4's ssl_var_lookup hook (mod_rewrite %{SSL:..}, mod_headers,
// mod_log_config %{..}x, ap_expr, mod_http2), and the CGI/SSI environment.
#pragma once

#include "httpd/apache.h"

namespace mgs::httpd {

void register_ssl_vars();

} // namespace mgs::httpd

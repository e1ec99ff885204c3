// Server Name Indication: which name-based virtual host a ClientHello asked for.
#pragma once

#include "httpd/apache.h"

#include <string_view>

namespace mgs::httpd {

// The TLS-enabled virtual host on this connection's address whose
// ServerName or ServerAlias matches `name`, or nullptr.
server_rec* find_sni_server(conn_rec* c, std::string_view name);

} // namespace mgs::httpd

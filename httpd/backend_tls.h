// TLS towards mod_proxy's back ends (GnuTLSProxyEngine): binding a
// back-end connection, and what the connection notes ask of it.
#pragma once

#include "httpd/apache.h"

namespace mgs::httpd {

// mod_proxy asks for TLS on a back-end connection (ap_ssl_bind_outgoing).
int bind_outgoing(conn_rec* c, ap_conf_vector_t* dir_conf, int enable_ssl);
// pre_connection for an outgoing connection bound above: puts the filters on.
int start_backend_tls(conn_rec* c);

} // namespace mgs::httpd

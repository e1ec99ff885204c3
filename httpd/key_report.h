// `apachectl -t -D GNUTLS_KEY_REPORT`: one line per TLS virtual host
// saying what the module loaded, as it loaded it: the
// key doctor's view of a whole configuration (gnutls-keystore
// check-config runs it).
#pragma once

#include "httpd/apache.h"

namespace mgs::httpd {

// The define that asks for the report.
inline constexpr const char* key_report_define = "GNUTLS_KEY_REPORT";

// After check_config built every server: logs MGS01007 per key (at
// notice, so configtest prints it), and MGS01008 for a chain out of order
// or a certificate expired or expiring within 14 days. Returns false if a
// certificate has expired.
bool report_keys(server_rec* base);

} // namespace mgs::httpd

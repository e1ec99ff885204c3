// OCSP stapling with responses fetched from the certificate's responder:
// kept in the GnuTLSOCSPCache socache (shared by all children), fetched when
// a handshake finds none, and refreshed ahead of expiry by mod_watchdog
// (GnuTLSOCSPAutoRefresh). One "gnutls-ocsp" mutex per certificate (so a
// slow responder holds only its own certificates' fetches), a non-MP-safe
// cache uses "gnutls-ocsp-cache".
//
// A handshake never waits for a responder: when mod_watchdog refreshes a
// certificate's response, handshakes only read the cache; otherwise a
// handshake that finds none fetches only if no other process is fetching
// it (try-lock), and every fetch ends within GnuTLSOCSPSocketTimeout,
// resolving the responder's name included.
#pragma once

#include "httpd/apache.h"
#include "httpd/server_config.h"

#include <memory>

namespace mgs::httpd {

struct OcspStapler;

// check_config: the stapler for server `s`, or nullptr when stapling by
// fetching is not wanted or not possible (no OCSP URI, no issuer in the
// chain, no cache). Throws mgs::Error when `required` (GnuTLSOCSPStapling
// on) and a requirement is not met.
std::shared_ptr<OcspStapler> make_ocsp_stapler(server_rec* s, const ServerConfig& sc, ServerCredentials& creds,
                                               bool required);

int ocsp_pre_config(apr_pool_t* pconf, apr_pool_t* plog, apr_pool_t* ptemp);
int ocsp_post_config(apr_pool_t* pconf, apr_pool_t* plog, apr_pool_t* ptemp, server_rec* base);
void ocsp_child_init(apr_pool_t* p, server_rec* s);

} // namespace mgs::httpd

// The network side of fetching an OCSP response: an HTTP POST to the
// responder on APR sockets, as mod_ssl's ssl_util_ocsp.c does, with one
// overall deadline that includes resolving the responder's name. Parsing
// the reply is src/ocsp_http_reply.h; checking the response src/ocsp_client.h.
#pragma once

#include "httpd/apache.h"
#include "keystore/bytes.h"

#include <chrono>
#include <string>

namespace mgs::httpd {

// POSTs `request` (DER) to `uri` (http:// only) and returns the response
// body. Every step (resolve, connect, send, each receive) ends by
// `deadline`. Throws mgs::Error naming the URI and what failed or timed out.
Bytes post_ocsp_request(const std::string& uri, const Bytes& request, std::chrono::steady_clock::time_point deadline,
                        apr_pool_t* parent);

} // namespace mgs::httpd

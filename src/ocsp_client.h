// Fetching OCSP responses for stapling (RFC 6960 over HTTP, RFC 5019
// style POST): build the request for a certificate and its issuer, send it
// to the responder named in the certificate, and check what comes back
// before anyone staples it. No Apache types: the httpd glue decides when and
// does the network part (httpd/ocsp_fetch.h).
#pragma once

#include "keystore/signer.h"

#include <gnutls/x509.h>

#include <chrono>
#include <optional>
#include <string>

namespace mgs {

// The first http:// OCSP URI in the certificate's Authority Information
// Access extension, or "" if it has none.
std::string ocsp_responder_uri(gnutls_x509_crt_t cert);

struct OcspRequest {
    Bytes der;
    Bytes nonce; // empty unless a nonce was asked for
};
OcspRequest make_ocsp_request(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer, bool with_nonce);

struct CheckedOcspResponse {
    Bytes der;
    // max() if the responder gave none, or one later than system_clock holds
    std::chrono::system_clock::time_point next_update;
};

// Accepts the response only if it is successful, signed by the issuer (or
// a responder it delegated to), about this certificate, says "good", is
// current, and (if `nonce` is non-empty) carries that nonce. Throws
// mgs::Error saying which check failed.
CheckedOcspResponse check_ocsp_response(const Bytes& der, gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer,
                                        const Bytes& nonce);

} // namespace mgs

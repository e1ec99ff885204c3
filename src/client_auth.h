// Client certificate authentication: what a virtual host asks of clients,
// and what came of it for one connection.
#pragma once

#include <gnutls/gnutls.h>

#include <string>

namespace mgs {

enum class ClientVerify { ignore, request, require };

inline constexpr const char* tls_client_auth_oid = "1.3.6.1.5.5.7.3.2";

struct ClientAuthPolicy {
    ClientVerify mode = ClientVerify::ignore;
    std::string purpose_oid = tls_client_auth_oid; // EKU required when present
};

enum class ClientCertStatus { none, success, failed };

struct ClientCertResult {
    ClientCertStatus status = ClientCertStatus::none;
    std::string reason; // why it failed, for the log
};

// Verifies the certificate the client sent against the credentials' trusted
// CAs, validity dates and the key purpose (a certificate without EKU passes).
ClientCertResult verify_client_certificate(gnutls_session_t session, const std::string& purpose_oid);

const char* client_verify_name(ClientCertStatus status); // SUCCESS / FAILED / NONE

// GnuTLS's sentence for a certificate verification status.
std::string verification_status_text(unsigned status);

} // namespace mgs

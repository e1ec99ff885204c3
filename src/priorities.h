// GnuTLS priority strings, compiled once at configuration time.
#pragma once

#include "keystore/error.h"
#include "keystore/gnutls_handles.h"

#include <string>

namespace mgs {

// The server default: TLS 1.2 and 1.3, forward secrecy, AEAD suites only (no
// CBC: LUCKY13), no SHA-1 signatures, and the server's order of suites, not
// the client's. testssl.sh finds nothing at LOW or above on the TLS layer with
// it (tests/integration/test_tls_defaults.py). docs/security.md lists the old
// clients it turns away.
inline constexpr const char* default_priorities =
    "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
    ":-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:-MAC-ALL:+AEAD"
    ":-RSA:-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1";

// SRP key exchange exists only with CBC suites in TLS 1.2 (GnuTLS turns TLS
// 1.3 off when SRP is on), so a vhost with a GnuTLSSRPPasswdFile and no
// GnuTLSPriorities gets the SRP suites first (a client that offers SRP means
// to log in with it) and CBC ciphers after the AEAD ones.
inline constexpr const char* default_srp_priorities =
    "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
    ":-KX-ALL:+SRP-RSA:+SRP-DSS:+SRP:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA"
    ":-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:+AES-256-CBC:+AES-128-CBC"
    ":-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1";

// Back-end connections (GnuTLSProxyPriorities unset, and no GnuTLSPriorities
// to fall back on): the module is the client there, and back ends are often
// older than the front end, so CBC suites stay offered.
inline constexpr const char* default_proxy_priorities = "NORMAL:-RSA:-VERS-TLS1.0:-VERS-TLS1.1";

class PriorityError : public Error {
public:
    PriorityError(const std::string& message, std::size_t position)
        : Error(message), position_(position) {}
    std::size_t position() const { return position_; }

private:
    std::size_t position_;
};

// Throws PriorityError: "invalid priority string at position N (at 'TOKEN'): ...".
Priority compile_priorities(const std::string& priorities);

// Whether the string enables TLS 1.2's RSA key exchange, in which the
// server's key decrypts (false for a string that does not compile: its
// error is reported where it is compiled).
bool allows_rsa_key_exchange(const std::string& priorities);

} // namespace mgs

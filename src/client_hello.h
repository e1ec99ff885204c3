// What a server needs from a ClientHello before GnuTLS processes it: the
// SNI name (to pick the virtual host's credentials) and the ALPN offers (to
// let the web server choose a protocol, e.g. h2).
#pragma once

#include <gnutls/gnutls.h>

#include <string>
#include <vector>

namespace mgs {

struct ClientHello {
    std::string server_name;       // empty without SNI
    std::vector<std::string> alpn; // in the client's order
};

// Parses a raw ClientHello handshake body; malformed extensions are ignored
// (GnuTLS rejects them itself right after).
ClientHello parse_client_hello(const gnutls_datum_t& message);

} // namespace mgs

// ClientHello SNI/ALPN extraction (src/client_hello.h) and plain-HTTP
// detection (src/plain_http.h) on arbitrary bytes. Input: a ClientHello
// handshake body (after the 5-byte record header and the 4-byte handshake
// header), as parse_client_hello() gets it from GnuTLS's hook.
#include "src/client_hello.h"
#include "src/plain_http.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    // The first bytes of a connection: a TLS record or SSLv2 hello is never
    // taken for HTTP.
    std::span<const std::uint8_t> bytes(data, size);
    bool http = mgs::looks_like_plain_http(bytes);
    if (size > 0 && ((data[0] >= 0x14 && data[0] <= 0x17) || data[0] == 0x80) && http)
        std::abort();
    if (size == 0 && http)
        std::abort();

    gnutls_datum_t d{const_cast<unsigned char*>(data), static_cast<unsigned>(size)};
    mgs::ClientHello hello = mgs::parse_client_hello(d);
    // Everything extracted comes from the input.
    if (hello.server_name.size() > size)
        std::abort();
    std::size_t total = 0;
    for (const auto& p : hello.alpn) {
        if (p.empty() || p.size() > 255)
            std::abort();
        total += p.size() + 1;
    }
    if (total > size)
        std::abort();
    return 0;
}

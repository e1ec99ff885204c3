#include "src/client_hello.h"

#include <cstdint>

namespace mgs {

namespace {

constexpr unsigned ext_server_name = 0;
constexpr unsigned ext_alpn = 16;

unsigned be16(const unsigned char* p) { return (unsigned{p[0]} << 8) | p[1]; }

void parse_sni(ClientHello& hello, const unsigned char* p, unsigned n)
{
    if (n < 2 || be16(p) + 2 > n)
        return;
    unsigned end = 2 + be16(p);
    for (unsigned i = 2; i + 3 <= end;) {
        unsigned type = p[i], len = be16(p + i + 1);
        if (i + 3 + len > end)
            return;
        if (type == 0) { // host_name
            hello.server_name.assign(reinterpret_cast<const char*>(p + i + 3), len);
            return;
        }
        i += 3 + len;
    }
}

void parse_alpn(ClientHello& hello, const unsigned char* p, unsigned n)
{
    if (n < 2 || be16(p) + 2 > n)
        return;
    unsigned end = 2 + be16(p);
    for (unsigned i = 2; i < end;) {
        unsigned len = p[i];
        if (len == 0 || i + 1 + len > end)
            return;
        hello.alpn.emplace_back(reinterpret_cast<const char*>(p + i + 1), len);
        i += 1 + len;
    }
}

int on_extension(void* ctx, unsigned tls_id, const unsigned char* data, unsigned size)
{
    auto* hello = static_cast<ClientHello*>(ctx);
    if (tls_id == ext_server_name)
        parse_sni(*hello, data, size);
    else if (tls_id == ext_alpn)
        parse_alpn(*hello, data, size);
    return 0;
}

} // namespace

ClientHello parse_client_hello(const gnutls_datum_t& message)
{
    ClientHello hello;
    gnutls_ext_raw_parse(&hello, on_extension, &message, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
    return hello;
}

} // namespace mgs

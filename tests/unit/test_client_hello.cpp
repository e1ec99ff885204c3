// SNI and ALPN read from a real ClientHello made by a GnuTLS client.
#include "src/client_hello.h"

#include <gtest/gtest.h>

#include <cstring>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace mgs::test {
namespace {

std::vector<unsigned char> client_hello_body(const char* sni, std::vector<std::string> alpn)
{
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    std::thread client([&] {
        gnutls_certificate_credentials_t cc;
        gnutls_certificate_allocate_credentials(&cc);
        gnutls_session_t s;
        gnutls_init(&s, GNUTLS_CLIENT);
        gnutls_set_default_priority(s);
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cc);
        if (sni)
            gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni, strlen(sni));
        std::vector<gnutls_datum_t> protos;
        for (auto& p : alpn)
            protos.push_back({reinterpret_cast<unsigned char*>(p.data()), static_cast<unsigned>(p.size())});
        if (!protos.empty())
            gnutls_alpn_set_protocols(s, protos.data(), static_cast<unsigned>(protos.size()), 0);
        gnutls_transport_set_int(s, fds[1]);
        gnutls_handshake(s); // fails when the other side closes
        gnutls_deinit(s);
        gnutls_certificate_free_credentials(cc);
    });
    std::vector<unsigned char> record(5);
    EXPECT_EQ(::recv(fds[0], record.data(), 5, MSG_WAITALL), 5);
    std::size_t len = (record[3] << 8) | record[4];
    std::vector<unsigned char> payload(len);
    EXPECT_EQ(::recv(fds[0], payload.data(), len, MSG_WAITALL), static_cast<ssize_t>(len));
    ::shutdown(fds[0], SHUT_RDWR);
    client.join();
    ::close(fds[0]);
    ::close(fds[1]);
    // Drop the handshake header (type, 24-bit length).
    return std::vector<unsigned char>(payload.begin() + 4, payload.end());
}

TEST(ClientHello, ReadsSniAndAlpnInOrder)
{
    auto body = client_hello_body("www.example.org", {"h2", "http/1.1"});
    gnutls_datum_t d{body.data(), static_cast<unsigned>(body.size())};
    ClientHello hello = parse_client_hello(d);
    EXPECT_EQ(hello.server_name, "www.example.org");
    EXPECT_EQ(hello.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
}

TEST(ClientHello, WithoutExtensionsGivesEmptyValues)
{
    auto body = client_hello_body(nullptr, {});
    gnutls_datum_t d{body.data(), static_cast<unsigned>(body.size())};
    ClientHello hello = parse_client_hello(d);
    EXPECT_TRUE(hello.server_name.empty());
    EXPECT_TRUE(hello.alpn.empty());
}

TEST(ClientHello, GarbageIsIgnored)
{
    unsigned char junk[] = {3, 3, 0, 0, 0xff, 0xff, 0xff};
    gnutls_datum_t d{junk, sizeof junk};
    ClientHello hello = parse_client_hello(d);
    EXPECT_TRUE(hello.server_name.empty());
}

} // namespace
} // namespace mgs::test

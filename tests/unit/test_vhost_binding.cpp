// Sessions belong to the virtual host that made them: identities that
// differ by any field, ticket keys derived per virtual host, and a server
// TlsConnection that switches virtual host on SNI resuming only its own
// tickets, in TLS 1.2 and 1.3.
#include "keystore/file_signer.h"
#include "src/priorities.h"
#include "src/tls_connection.h"
#include "src/vhost_identity.h"
#include "socket_transport.h"
#include "test_pki.h"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace mgs::test {
namespace {

TEST(IdentityDigest, FieldBoundariesCount)
{
    EXPECT_NE(IdentityDigest().add("a", "bc").hex(), IdentityDigest().add("ab", "c").hex());
    EXPECT_NE(IdentityDigest().add("a", "").add("b", "").hex(), IdentityDigest().add("a", "b").hex());
    EXPECT_EQ(IdentityDigest().add("x", "1").add("y", "2").hex(), IdentityDigest().add("x", "1").add("y", "2").hex());
    EXPECT_EQ(IdentityDigest().hex().size(), 64u);
}

TEST(IdentityDigest, CredentialsCountByKeyAndReference)
{
    const TestIdentity& id = identity_for(all_key_types()[3]);
    auto signer = load_key_bytes(id.export_key(GNUTLS_X509_FMT_PEM, false), "key", Secret());
    auto pem = std::span(reinterpret_cast<const std::uint8_t*>(id.cert_pem.data()), id.cert_pem.size());
    ServerCredentials a(CertificateChain::from_pem(pem, "a.pem"), signer);
    ServerCredentials b(CertificateChain::from_pem(pem, "b.pem"), signer);
    EXPECT_EQ(IdentityDigest().add_credentials(a, "k").hex(), IdentityDigest().add_credentials(a, "k").hex());
    EXPECT_NE(IdentityDigest().add_credentials(a, "k").hex(), IdentityDigest().add_credentials(b, "k").hex());
    EXPECT_NE(IdentityDigest().add_credentials(a, "k").hex(), IdentityDigest().add_credentials(a, "k2").hex());
}

TEST(TicketKey, DerivedPerContext)
{
    TicketKey master;
    TicketKey a1(master, "a"), a2(master, "a"), b(master, "b");
    auto bytes = [](const TicketKey& k) {
        return std::string(reinterpret_cast<const char*>(k.get()->data), k.get()->size);
    };
    EXPECT_EQ(bytes(a1).size(), bytes(master).size());
    EXPECT_EQ(bytes(a1), bytes(a2));
    EXPECT_NE(bytes(a1), bytes(b));
    EXPECT_NE(bytes(a1), bytes(master));
    TicketKey other_master;
    EXPECT_NE(bytes(TicketKey(other_master, "a")), bytes(a1));
}

// Two virtual hosts on one certificate: "a" and "b", each with its own
// ticket key (or none), chosen by SNI as the Apache glue does.
struct TwoHosts {
    const TestIdentity& id = identity_for(all_key_types()[3]);
    ServerCredentials creds{CertificateChain::from_pem({reinterpret_cast<const std::uint8_t*>(id.cert_pem.data()),
                                                        id.cert_pem.size()},
                                                       "cert"),
                            load_key_bytes(id.export_key(GNUTLS_X509_FMT_PEM, false), "key", Secret())};
    Priority prio = compile_priorities(default_priorities);
    TicketKey master;
    TicketKey key_a{master, "a"}, key_b{master, "b"};
    TlsSettings a, b;

    explicit TwoHosts(bool b_has_tickets)
    {
        for (TlsSettings* s : {&a, &b}) {
            s->priority = prio.get();
            s->credentials = &creds;
        }
        a.ticket_key = &key_a;
        b.ticket_key = b_has_tickets ? &key_b : nullptr;
    }

    // One connection with SNI `sni`, offering `session` if not empty; gives
    // whether it resumed and the session to offer next time.
    bool connect(const char* sni, const char* version, std::string& session)
    {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        std::string client_error;
        bool resumed = false;
        std::thread client([&] {
            gnutls_certificate_credentials_t cc;
            gnutls_certificate_allocate_credentials(&cc);
            gnutls_session_t s;
            gnutls_init(&s, GNUTLS_CLIENT);
            std::string p = std::string("NORMAL:-VERS-ALL:") + version;
            gnutls_priority_set_direct(s, p.c_str(), nullptr);
            gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cc);
            gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni, strlen(sni));
            if (!session.empty())
                gnutls_session_set_data(s, session.data(), session.size());
            gnutls_transport_set_int(s, fds[1]);
            int rc;
            do {
                rc = gnutls_handshake(s);
            } while (rc < 0 && !gnutls_error_is_fatal(rc));
            if (rc < 0) {
                client_error = gnutls_strerror(rc);
            } else {
                resumed = gnutls_session_is_resumed(s);
                gnutls_record_send(s, "ping", 4);
                char buf[16];
                gnutls_record_recv(s, buf, sizeof buf); // TLS 1.3 tickets come before it
                gnutls_datum_t data{};
                if (gnutls_session_get_data2(s, &data) == 0) {
                    session.assign(reinterpret_cast<char*>(data.data), data.size);
                    gnutls_free(data.data);
                }
                gnutls_bye(s, GNUTLS_SHUT_WR);
            }
            gnutls_deinit(s);
            gnutls_certificate_free_credentials(cc);
            ::close(fds[1]);
        });
        SocketTransport transport(fds[0]);
        TlsConnection conn(transport, a, [this](const ClientHello& hello) {
            HelloDecision d;
            d.settings = hello.server_name == "b" ? &b : &a;
            return d;
        });
        int rc = conn.handshake();
        EXPECT_EQ(rc, 0) << conn.describe_failure(rc);
        if (rc == 0) {
            std::uint8_t buf[16];
            conn.recv(buf);
            conn.send(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>("pong"), 4));
            EXPECT_EQ(gnutls_session_is_resumed(conn.session()) != 0, resumed);
        }
        client.join();
        ::close(fds[0]);
        EXPECT_EQ(client_error, "");
        return resumed;
    }
};

class TicketBinding : public ::testing::TestWithParam<const char*> {};

TEST_P(TicketBinding, ATicketResumesOnlyOnItsVirtualHost)
{
    TwoHosts hosts(true);
    std::string from_a;
    EXPECT_FALSE(hosts.connect("a", GetParam(), from_a));
    ASSERT_FALSE(from_a.empty());
    std::string s = from_a;
    EXPECT_TRUE(hosts.connect("a", GetParam(), s)) << "a's own ticket must resume on a";
    s = from_a;
    EXPECT_FALSE(hosts.connect("b", GetParam(), s)) << "a's ticket resumed on b";
    std::string from_b = s; // made by b just now
    EXPECT_TRUE(hosts.connect("b", GetParam(), s));
    EXPECT_FALSE(hosts.connect("a", GetParam(), from_b)) << "b's ticket resumed on a";
}

TEST_P(TicketBinding, AVirtualHostWithoutTicketsTakesNoneOfTheFirstHost)
{
    // The connection starts with a's settings (tickets on): once SNI picks
    // b, a's ticket key must not be in force.
    TwoHosts hosts(false);
    std::string from_a;
    hosts.connect("a", GetParam(), from_a);
    ASSERT_FALSE(from_a.empty());
    EXPECT_FALSE(hosts.connect("b", GetParam(), from_a));
}

INSTANTIATE_TEST_SUITE_P(Versions, TicketBinding, ::testing::Values("+VERS-TLS1.2", "+VERS-TLS1.3"),
                         [](const auto& info) {
                             return std::string(info.param).find("1.3") != std::string::npos ? "tls13" : "tls12";
                         });

} // namespace
} // namespace mgs::test

// The TLS core end to end: a server TlsConnection over a socketpair against
// a GnuTLS client, for every key type, TLS 1.2 and 1.3, with the key bound
// natively and through the callback path hardware keys take.
#include "keystore/file_signer.h"
#include "src/priorities.h"
#include "src/tls_connection.h"
#include "socket_transport.h"
#include "test_pki.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace mgs::test {
namespace {

// Hides the native key so the ext4 callbacks carry every signature.
class CallbackOnly final : public Signer {
public:
    explicit CallbackOnly(std::shared_ptr<Signer> s) : s_(std::move(s)) {}
    std::string describe() const override { return s_->describe(); }
    std::string backend() const override { return "test"; }
    gnutls_pk_algorithm_t algorithm() const override { return s_->algorithm(); }
    unsigned bits() const override { return s_->bits(); }
    std::vector<gnutls_sign_algorithm_t> schemes() const override { return s_->schemes(); }
    PubKey public_key() const override { return s_->public_key(); }
    Bytes sign(const SignRequest& r) override { return s_->sign(r); }

private:
    std::shared_ptr<Signer> s_;
};

struct Case {
    KeyType key;
    const char* version; // priority fragment
    bool callbacks;
};

void PrintTo(const Case& c, std::ostream* os)
{
    *os << c.key.name << " " << c.version << (c.callbacks ? " callbacks" : " native");
}

std::string case_name(const ::testing::TestParamInfo<Case>& info)
{
    std::string v = info.param.version;
    return info.param.key.name + (v.find("1.3") != std::string::npos ? "_tls13" : "_tls12") +
           (info.param.callbacks ? "_callbacks" : "_native");
}

std::vector<Case> all_cases()
{
    std::vector<Case> out;
    for (const auto& k : all_key_types())
        for (const char* v : {"+VERS-TLS1.2", "+VERS-TLS1.3"})
            for (bool cb : {false, true})
                out.push_back({k, v, cb});
    return out;
}

class Handshake : public ::testing::TestWithParam<Case> {};

TEST_P(Handshake, ClientVerifiesServerAndDataFlows)
{
    const Case& tc = GetParam();
    const TestIdentity& id = identity_for(tc.key);
    std::shared_ptr<Signer> signer = load_key_bytes(id.export_key(GNUTLS_X509_FMT_PEM, true), "key", Secret());
    if (tc.callbacks)
        signer = std::make_shared<CallbackOnly>(signer);
    auto chain = CertificateChain::from_pem(
        {reinterpret_cast<const std::uint8_t*>(id.cert_pem.data()), id.cert_pem.size()}, "cert");
    ServerCredentials creds(std::move(chain), signer);
    Priority prio = compile_priorities(default_priorities);
    TlsSettings settings;
    settings.priority = prio.get();
    settings.credentials = &creds;

    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);

    std::string client_error;
    std::string client_got;
    std::thread client([&] {
        gnutls_certificate_credentials_t cc;
        gnutls_certificate_allocate_credentials(&cc);
        gnutls_datum_t ca{reinterpret_cast<unsigned char*>(const_cast<char*>(id.cert_pem.data())),
                          static_cast<unsigned>(id.cert_pem.size())};
        gnutls_certificate_set_x509_trust_mem(cc, &ca, GNUTLS_X509_FMT_PEM);
        gnutls_session_t s;
        gnutls_init(&s, GNUTLS_CLIENT);
        std::string p = std::string("NORMAL:-VERS-ALL:") + tc.version;
        gnutls_priority_set_direct(s, p.c_str(), nullptr);
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cc);
        gnutls_server_name_set(s, GNUTLS_NAME_DNS, "localhost", 9);
        gnutls_session_set_verify_cert(s, "localhost", 0);
        gnutls_transport_set_int(s, fds[1]);
        int rc;
        do {
            rc = gnutls_handshake(s);
        } while (rc < 0 && !gnutls_error_is_fatal(rc));
        if (rc < 0) {
            client_error = gnutls_strerror(rc);
        } else {
            gnutls_record_send(s, "ping", 4);
            char buf[16];
            ssize_t n = gnutls_record_recv(s, buf, sizeof buf);
            if (n > 0)
                client_got.assign(buf, static_cast<std::size_t>(n));
            gnutls_bye(s, GNUTLS_SHUT_WR);
        }
        gnutls_deinit(s);
        gnutls_certificate_free_credentials(cc);
        ::close(fds[1]);
    });

    SocketTransport transport(fds[0]);
    TlsConnection conn(transport, settings);
    int rc = conn.handshake();
    EXPECT_EQ(rc, 0) << conn.describe_failure(rc);
    if (rc == 0) {
        std::uint8_t buf[16];
        ssize_t n = conn.recv(buf);
        EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), static_cast<std::size_t>(std::max<ssize_t>(n, 0))),
                  "ping");
        conn.send(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>("pong"), 4));
        EXPECT_EQ(gnutls_protocol_get_version(conn.session()),
                  std::string(tc.version).find("1.3") != std::string::npos ? GNUTLS_TLS1_3 : GNUTLS_TLS1_2);
        EXPECT_EQ(conn.server_name(), "localhost");
    }
    client.join();
    ::close(fds[0]);
    EXPECT_EQ(client_error, "");
    EXPECT_EQ(client_got, "pong");
}

INSTANTIATE_TEST_SUITE_P(AllKeys, Handshake, ::testing::ValuesIn(all_cases()), case_name);

TEST(HandshakeFailure, NoSharedCipherIsReportedByName)
{
    const TestIdentity& id = identity_for(all_key_types()[3]);
    auto signer = load_key_bytes(id.export_key(GNUTLS_X509_FMT_PEM, false), "key", Secret());
    auto chain = CertificateChain::from_pem(
        {reinterpret_cast<const std::uint8_t*>(id.cert_pem.data()), id.cert_pem.size()}, "cert");
    ServerCredentials creds(std::move(chain), signer);
    Priority prio = compile_priorities("NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM");
    TlsSettings settings;
    settings.priority = prio.get();
    settings.credentials = &creds;
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    std::thread client([&] {
        gnutls_certificate_credentials_t cc;
        gnutls_certificate_allocate_credentials(&cc);
        gnutls_session_t s;
        gnutls_init(&s, GNUTLS_CLIENT);
        gnutls_priority_set_direct(s, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC", nullptr);
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cc);
        gnutls_transport_set_int(s, fds[1]);
        gnutls_handshake(s);
        gnutls_deinit(s);
        gnutls_certificate_free_credentials(cc);
        ::close(fds[1]);
    });
    SocketTransport transport(fds[0]);
    TlsConnection conn(transport, settings);
    int rc = conn.handshake();
    ::shutdown(fds[0], SHUT_RDWR); // the client waits for an answer otherwise
    client.join();
    ::close(fds[0]);
    EXPECT_EQ(rc, GNUTLS_E_NO_CIPHER_SUITES) << gnutls_strerror(rc);
    EXPECT_NE(conn.describe_failure(rc).find("GNUTLS_E_NO_CIPHER_SUITES"), std::string::npos);
}

} // namespace
} // namespace mgs::test

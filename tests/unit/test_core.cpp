// Credentials, priorities, plain-HTTP detection and PIN sources.
#include <gnutls/crypto.h>
#include "keystore/error.h"
#include "keystore/file_signer.h"
#include "keystore/secret_source.h"
#include "src/plain_http.h"
#include "src/priorities.h"
#include "src/server_credentials.h"
#include "test_pki.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace mgs::test {
namespace {

CertificateChain chain_of(const TestIdentity& id)
{
    return CertificateChain::from_pem(
        {reinterpret_cast<const std::uint8_t*>(id.cert_pem.data()), id.cert_pem.size()}, "cert.pem");
}

TEST(ServerCredentials, AcceptsTheMatchingKey)
{
    const auto& id = identity_for(all_key_types()[3]);
    auto signer = load_key_bytes(id.export_key(GNUTLS_X509_FMT_PEM, false), "key.pem", Secret());
    ServerCredentials creds(chain_of(id), signer);
    EXPECT_NE(creds.get(), nullptr);
    EXPECT_EQ(creds.chain().leaf_subject(), "CN=p256.test");
}

TEST(ServerCredentials, RefusesAKeyOfAnotherCertificate)
{
    const auto& a = identity_for(all_key_types()[3]);
    const auto& b = identity_for(all_key_types()[0]);
    auto signer = load_key_bytes(b.export_key(GNUTLS_X509_FMT_PEM, false), "key.pem", Secret());
    try {
        ServerCredentials creds(chain_of(a), signer);
        FAIL() << "mismatched key accepted";
    } catch (const KeyMismatchError& e) {
        EXPECT_EQ(e.certificate_subject(), "CN=p256.test");
        EXPECT_NE(std::string(e.what()).find("does not match the certificate"), std::string::npos);
    }
}

TEST(CertificateChain, RefusesFilesWithoutCertificates)
{
    std::string junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    EXPECT_THROW(CertificateChain::from_pem({reinterpret_cast<const std::uint8_t*>(junk.data()), junk.size()}, "x"),
                 Error);
}

TEST(Priorities, DefaultsCompile)
{
    EXPECT_NE(compile_priorities(default_priorities), nullptr);
    EXPECT_NE(compile_priorities(default_srp_priorities), nullptr);
    EXPECT_NE(compile_priorities(default_proxy_priorities), nullptr);
}

TEST(Priorities, DefaultOffersOnlyAeadSuites)
{
    Priority p = compile_priorities(default_priorities);
    const unsigned* list = nullptr;
    int n = gnutls_priority_cipher_list(p.get(), &list);
    ASSERT_GT(n, 0);
    for (int i = 0; i < n; ++i)
        EXPECT_TRUE(gnutls_cipher_get_tag_size(static_cast<gnutls_cipher_algorithm_t>(list[i])) > 0)
            << gnutls_cipher_get_name(static_cast<gnutls_cipher_algorithm_t>(list[i]));
}

TEST(Priorities, ReportsThePositionOfTheBadToken)
{
    try {
        compile_priorities("NORMAL:-RSA:+NOPE:-VERS-TLS1.0");
        FAIL();
    } catch (const PriorityError& e) {
        EXPECT_EQ(e.position(), 12u);
        EXPECT_NE(std::string(e.what()).find("position 12"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("'+NOPE'"), std::string::npos) << e.what();
    }
}

TEST(PlainHttp, RecognisesMethodsNotTls)
{
    auto bytes = [](std::string_view s) {
        return std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    };
    EXPECT_TRUE(looks_like_plain_http(bytes("GET / HTTP/1.1\r\n")));
    EXPECT_TRUE(looks_like_plain_http(bytes("POST /x HTTP/1.0\r\n")));
    EXPECT_TRUE(looks_like_plain_http(bytes("OPTIONS * HTTP/1.1\r\n")));
    const std::uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00};
    EXPECT_FALSE(looks_like_plain_http(hello));
    EXPECT_FALSE(looks_like_plain_http(bytes("get / http/1.1")));
    EXPECT_FALSE(looks_like_plain_http(bytes("")));
}

TEST(PlainHttp, ErrorNotesSayWhatToDoAndEscapeTheUrl)
{
    std::string notes = plain_http_error_notes("https://example.org:8443/");
    EXPECT_NE(notes.find("speaking plain HTTP to an SSL-enabled server port"), std::string::npos);
    EXPECT_NE(notes.find("<a href=\"https://example.org:8443/\">"), std::string::npos);
    EXPECT_EQ(plain_http_error_notes("https://x/<script>").find("<script>"), std::string::npos);
}

TEST(SecretSource, ReadsFileEnvAndProgram)
{
    std::string path = ::testing::TempDir() + "/pin.txt";
    std::ofstream(path) << "1234\nignored\n";
    EXPECT_STREQ(read_secret_source("file:" + path).reveal(), "1234");
    ::setenv("MGS_TEST_PIN", "5678", 1);
    EXPECT_STREQ(read_secret_source("env:MGS_TEST_PIN").reveal(), "5678");
    EXPECT_STREQ(read_secret_source("exec:printf '9012\\n'").reveal(), "9012");
}

TEST(SecretSource, FailuresNameTheSourceNotTheValue)
{
    EXPECT_THROW(check_secret_source_syntax("pin:1234"), Error);
    std::string printed = ::testing::TempDir() + "/printed-pin.txt";
    std::ofstream(printed) << "leaked-pin-77\n";
    try {
        read_secret_source("exec:cat " + printed + "; exit 3");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("exited with status 3"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("leaked-pin-77"), std::string::npos) << e.what();
    }
    ::unsetenv("MGS_TEST_UNSET_PIN");
    EXPECT_THROW(read_secret_source("env:MGS_TEST_UNSET_PIN"), Error);
    EXPECT_THROW(read_secret_source("file:/nonexistent/pin"), Error);
}

TEST(SecretSource, EnvVariableIsGoneOnceRead)
{
    ::setenv("MGS_TEST_PIN_ONCE", "4321", 1);
    EXPECT_STREQ(read_secret_source("env:MGS_TEST_PIN_ONCE").reveal(), "4321");
    EXPECT_EQ(std::getenv("MGS_TEST_PIN_ONCE"), nullptr);
}

TEST(SecretSource, ProgramGetsAMinimalEnvironment)
{
    ::setenv("MGS_TEST_APACHE_SECRET", "not-for-helpers", 1);
    // The program prints its whole environment's variable names on one line.
    Secret names = read_secret_source("exec:env | cut -d= -f1 | sort | tr '\\n' ' '");
    std::string got = names.reveal();
    EXPECT_EQ(got.find("MGS_TEST_APACHE_SECRET"), std::string::npos) << got;
    EXPECT_NE(got.find("PATH"), std::string::npos) << got;
    ::unsetenv("MGS_TEST_APACHE_SECRET");
}

TEST(SecretSource, ProgramThatHangsIsKilledAtTheDeadline)
{
    auto t0 = std::chrono::steady_clock::now();
    try {
        // Prints nothing and never ends; its own child holds stdout too.
        read_secret_source("exec:sleep 600 & sleep 600");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("did not finish within"), std::string::npos) << e.what();
    }
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_LT(took, std::chrono::seconds(exec_secret_deadline_s + 5));
    // Nothing it started is left running.
    EXPECT_NE(std::system("pgrep -f '^sleep 600$' >/dev/null"), 0);
}

TEST(SecretSource, CacheReadsEachSourceOnce)
{
    std::string count = ::testing::TempDir() + "/exec-count";
    std::remove(count.c_str());
    SecretSourceCache cache;
    std::string spec = "exec:echo run >> " + count + "; echo 2468";
    EXPECT_STREQ(cache.read(spec).reveal(), "2468");
    EXPECT_STREQ(cache.read(spec).reveal(), "2468");
    std::ifstream in(count);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(all, "run\n");
    cache.clear();
    EXPECT_STREQ(cache.read(spec).reveal(), "2468"); // a new configuration load runs it again
}

TEST(Secret, CopiesCarryTheValue)
{
    Secret a("abc");
    Secret b = a;
    Secret c = std::move(a);
    EXPECT_STREQ(b.reveal(), "abc");
    EXPECT_STREQ(c.reveal(), "abc");
    EXPECT_TRUE(a.empty());
}

} // namespace
} // namespace mgs::test

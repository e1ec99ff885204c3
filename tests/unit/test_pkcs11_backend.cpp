// The PKCS#11 backend against a real SoftHSM2 token made by the test: keys
// generated on the token sign every scheme TLS asks for, in parallel and
// after fork, and the startup errors say what is wrong.
#include "keystore/error.h"
#include "pkcs11/providers.h"
#include "pkcs11/token_certificate.h"
#include "pkcs11/token_signer.h"
#include "pkcs11/url.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace mgs::test {
namespace {

constexpr const char* softhsm_module = "/usr/lib/softhsm/libsofthsm2.so";

void run(const std::string& cmd)
{
    ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
}

class SoftHsmToken : public ::testing::Test {
protected:
    static void SetUpTestSuite()
    {
        dir_ = std::filesystem::temp_directory_path() / ("mgs-softhsm-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_ / "tokens");
        std::ofstream(dir_ / "softhsm2.conf") << "directories.tokendir = " << (dir_ / "tokens").string()
                                              << "\nobjectstore.backend = file\nlog.level = ERROR\n";
        ::setenv("SOFTHSM2_CONF", (dir_ / "softhsm2.conf").c_str(), 1);
        run("softhsm2-util --init-token --free --label unit --so-pin 87654321 --pin 1234");
        std::string p11 = std::string("GNUTLS_PIN=1234 p11tool --provider ") + softhsm_module + " --login ";
        run(p11 + "--generate-privkey ecdsa --curve secp256r1 --label ec256 'pkcs11:token=unit'");
        run(p11 + "--generate-privkey ecdsa --curve secp384r1 --label ec384 'pkcs11:token=unit'");
        run(p11 + "--generate-privkey rsa --bits 2048 --label rsa2048 'pkcs11:token=unit'");
        providers_.load({softhsm_module});
    }
    static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

    static std::shared_ptr<Signer> open(const std::string& object, const char* pin = "1234")
    {
        KeyOptions o;
        o.pin = Secret(pin);
        return pkcs11::Pkcs11KeyBackend(providers_).open("pkcs11:token=unit;object=" + object + ";type=private", o);
    }

    static void expect_signs_everything(Signer& s)
    {
        PubKey pub = s.public_key();
        std::string text = "CertificateVerify content";
        gnutls_datum_t msg{reinterpret_cast<unsigned char*>(text.data()), static_cast<unsigned>(text.size())};
        for (auto scheme : s.schemes()) {
            SCOPED_TRACE(gnutls_sign_get_name(scheme));
            Bytes sig = s.sign({scheme, SignInput::message,
                                {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, 0});
            gnutls_datum_t sd{sig.data(), static_cast<unsigned>(sig.size())};
            EXPECT_GE(gnutls_pubkey_verify_data2(pub.get(), scheme, 0, &msg, &sd), 0);
        }
    }

    static inline std::filesystem::path dir_;
    static inline pkcs11::ProviderSet providers_;
};

TEST_F(SoftHsmToken, EveryKeySignsEverySchemeItDeclares)
{
    for (const char* object : {"ec256", "ec384", "rsa2048"}) {
        SCOPED_TRACE(object);
        auto s = open(object);
        EXPECT_EQ(s->backend(), "pkcs11");
        EXPECT_FALSE(s->schemes().empty());
        expect_signs_everything(*s);
    }
    auto rsa = open("rsa2048")->schemes();
    EXPECT_NE(std::find(rsa.begin(), rsa.end(), GNUTLS_SIGN_RSA_PSS_RSAE_SHA256), rsa.end())
        << "SoftHSM2 has CKM_RSA_PKCS_PSS: TLS 1.3 must stay possible";
}

TEST_F(SoftHsmToken, ThreadsSignInParallel)
{
    auto s = open("ec256");
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 12; ++t)
        threads.emplace_back([&] {
            std::uint8_t msg[32] = {1, 2, 3};
            for (int i = 0; i < 20; ++i)
                if (!s->sign({GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, SignInput::message, msg, 0}).empty())
                    ++ok;
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(ok.load(), 12 * 20);
}

TEST_F(SoftHsmToken, ChildProcessOpensItsOwnSessions)
{
    auto s = open("ec256");
    std::uint8_t msg[4] = {9, 9, 9, 9};
    s->sign({GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, SignInput::message, msg, 0}); // a session in the parent
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        try {
            bool good = !s->sign({GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, SignInput::message, msg, 0}).empty();
            ::_exit(good ? 0 : 1);
        } catch (...) {
            ::_exit(2);
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST_F(SoftHsmToken, WrongPinIsNamedAndNotLeaked)
{
    try {
        open("ec256", "99999999");
        FAIL();
    } catch (const Error& e) {
        std::string m = e.what();
        EXPECT_NE(m.find("CKR_PIN_INCORRECT"), std::string::npos) << m;
        EXPECT_EQ(m.find("99999999"), std::string::npos) << m;
    }
    // The right PIN still works: the wrong one was tried once, not until lock-out.
    EXPECT_NO_THROW(open("ec256"));
}

TEST_F(SoftHsmToken, MissingObjectIsNamed)
{
    try {
        open("nope");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("no token or private key matches"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("object=nope"), std::string::npos) << e.what();
    }
}

TEST(Pkcs11Url, ReadsTheAttributesGnuTlsLeavesToUs)
{
    EXPECT_EQ(pkcs11::url_module_path("pkcs11:token=a;object=c?module-path=/x/y%20z.so&pin-source=file:/p"),
              "/x/y z.so");
    EXPECT_EQ(pkcs11::url_pin_source("pkcs11:token=a?pin-source=file:/p"), "file:/p");
    EXPECT_EQ(pkcs11::url_pin_source("pkcs11:token=a;object=b"), std::nullopt);
    EXPECT_EQ(pkcs11::url_module_path("pkcs11:object=%zz?module-path=/x.so"), std::nullopt);
}

TEST(Pkcs11Url, SyntaxErrorsComeFromP11Kit)
{
    EXPECT_EQ(pkcs11::url_syntax_error("pkcs11:token=a;object=b"), "");
    EXPECT_EQ(pkcs11::url_syntax_error("pkcs11:token=a%20b;id=%01%02;type=private"), "");
    EXPECT_NE(pkcs11::url_syntax_error("pkcs11:object=%zz"), "");
    EXPECT_NE(pkcs11::url_syntax_error("pkcs11:token=a;pin-value=12%z3"), "");
}

TEST(Pkcs11Url, RedactsPinsWhereverTheyStand)
{
    EXPECT_EQ(pkcs11::redact_url("pkcs11:token=a;object=b;pin-value=1234"), "pkcs11:token=a;object=b?pin-value=***");
    EXPECT_EQ(pkcs11::redact_url("pkcs11:token=a?pin-source=file:/x&module-name=softhsm2"),
              "pkcs11:token=a?module-name=softhsm2&pin-source=***");
    EXPECT_EQ(pkcs11::redact_url("pkcs11:token=a"), "pkcs11:token=a");
    // The first attribute follows the scheme, not a separator.
    EXPECT_EQ(pkcs11::redact_url("pkcs11:pin-value=1234;token=a"), "pkcs11:token=a?pin-value=***");
    EXPECT_EQ(pkcs11::redact_url("pkcs11:pin-value=1234"), "pkcs11:?pin-value=***");
    EXPECT_EQ(pkcs11::redact_url("pkcs11:token=a?pin-value=12&pin-value=34"), "pkcs11:token=a?pin-value=***");
    // Percent-encoded names and values are what p11-kit decodes.
    EXPECT_EQ(pkcs11::redact_url("pkcs11:token=a;pin-%76alue=5678").find("5678"), std::string::npos);
    EXPECT_EQ(pkcs11::redact_url("pkcs11:token=a;pin-value=%35%36%37%38").find("%35%36"), std::string::npos);
    // An unparsable URL is not echoed.
    std::string bad = pkcs11::redact_url("pkcs11:object=%zz;pin-value=4321");
    EXPECT_EQ(bad.find("4321"), std::string::npos);
    EXPECT_NE(bad.find("invalid"), std::string::npos);
}

} // namespace
} // namespace mgs::test

// The TPM 2.0 backend against a real swtpm started by the test: TSS2 key
// files written by tpm2-openssl and a persistent key made with tpm2-tools
// sign every scheme they declare through GnuTLS's callback path, directly
// and through the key agent process, and the startup errors say what is wrong.
#include "keystore/error.h"
#include "keystore/file_io.h"
#include "src/key_binding.h"
#include "tpm/key_agent.h"
#include "tpm/key_file.h"
#include "tpm/tpm_signer.h"

#include <gnutls/crypto.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

namespace mgs::test {
namespace {

namespace fs = std::filesystem;

void run(const std::string& cmd)
{
    ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
}

bool port_free(int port)
{
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// One swtpm process on loopback: server port P, control port P+1.
class Swtpm {
public:
    explicit Swtpm(fs::path state) : state_(std::move(state))
    {
        fs::create_directories(state_);
        for (port_ = 20000 + (::getpid() * 7) % 20000; !(port_free(port_) && port_free(port_ + 1)); port_ += 2) {
        }
        start();
    }
    ~Swtpm() { stop(); }

    void start()
    {
        pid_ = ::fork();
        if (pid_ == 0) {
            ::setsid();
            std::string server = "type=tcp,port=" + std::to_string(port_) + ",bindaddr=127.0.0.1";
            std::string ctrl = "type=tcp,port=" + std::to_string(port_ + 1) + ",bindaddr=127.0.0.1";
            std::string st = "dir=" + state_.string();
            ::execlp("swtpm", "swtpm", "socket", "--tpm2", "--tpmstate", st.c_str(), "--server", server.c_str(),
                     "--ctrl", ctrl.c_str(), "--flags", "not-need-init,startup-clear", nullptr);
            ::_exit(127);
        }
        for (int i = 0; i < 100 && port_free(port_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    void stop()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        pid_ = -1;
    }
    std::string tcti() const { return "swtpm:host=127.0.0.1,port=" + std::to_string(port_); }

private:
    fs::path state_;
    int port_ = 0;
    pid_t pid_ = -1;
};

class TpmKeys : public ::testing::Test {
protected:
    static void SetUpTestSuite()
    {
        dir_ = fs::temp_directory_path() / ("mgs-tpm-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        tpm_ = new Swtpm(dir_ / "state");
        std::string gen = "TPM2OPENSSL_TCTI=" + tpm_->tcti() +
                          " openssl genpkey -provider tpm2 -provider default ";
        run(gen + "-algorithm EC -pkeyopt group:P-256 -out " + path("ec256.pem"));
        run(gen + "-algorithm EC -pkeyopt group:P-384 -out " + path("ec384.pem"));
        run(gen + "-algorithm RSA -pkeyopt bits:2048 -out " + path("rsa2048.pem"));
        run(gen + "-algorithm RSA -pkeyopt bits:2048 -pkeyopt user-auth:s3cret -out " + path("rsa-auth.pem"));
        std::string tools = "TPM2TOOLS_TCTI=" + tpm_->tcti() + " ";
        // Wrong-PIN tests and killed TPMs count as dictionary attacks; a
        // lockout would fail the tests that follow.
        run(tools + "tpm2_dictionarylockout -s -n 1000 -t 0 -l 0");
        std::string flush = " && " + tools + "tpm2_flushcontext -t";
        run("cd " + dir_.string() + " && " + tools + "tpm2_createprimary -Q -C o -g sha256 -G ecc -c prim.ctx" +
            flush + " && " + tools + "tpm2_create -Q -C prim.ctx -G ecc256:ecdsa-sha256 -u k.pub -r k.priv" +
            flush + " && " + tools + "tpm2_load -Q -C prim.ctx -u k.pub -r k.priv -c k.ctx" + flush + " && " +
            tools + "tpm2_evictcontrol -Q -C o -c k.ctx 0x81000010" + flush);
        // A key made on a different TPM.
        Swtpm other(dir_ / "other-state");
        run("TPM2OPENSSL_TCTI=" + other.tcti() +
            " openssl genpkey -provider tpm2 -provider default -algorithm EC -pkeyopt group:P-256 -out " +
            path("foreign.pem"));
    }
    static void TearDownTestSuite()
    {
        delete tpm_;
        fs::remove_all(dir_);
    }

    static std::string path(const char* name) { return (dir_ / name).string(); }

    static std::shared_ptr<Signer> open(const std::string& ref, const char* pin = "", tpm::KeyAgent* agent = nullptr)
    {
        KeyOptions o;
        o.pin = Secret(pin);
        o.tpm_tcti = tpm_->tcti();
        return tpm::TpmKeyBackend(agent).open(ref, o);
    }

    static std::string open_error(const std::string& ref, const char* pin = "", std::string tcti = "")
    {
        KeyOptions o;
        o.pin = Secret(pin);
        o.tpm_tcti = tcti.empty() ? tpm_->tcti() : tcti;
        try {
            tpm::TpmKeyBackend().open(ref, o);
        } catch (const Error& e) {
            return e.what();
        }
        return "no error";
    }

    // Through GnuTLS's own callback path (the one TLS uses), both as a
    // message (TLS 1.3) and as a prehashed digest (TLS 1.2).
    static void expect_signs_everything(Signer& s)
    {
        PrivKey priv = bind_signer(s);
        PubKey pub = s.public_key();
        std::string text = "CertificateVerify content";
        gnutls_datum_t msg{reinterpret_cast<unsigned char*>(text.data()), static_cast<unsigned>(text.size())};
        for (auto scheme : s.schemes()) {
            SCOPED_TRACE(gnutls_sign_get_name(scheme));
            gnutls_datum_t sig{};
            ASSERT_GE(gnutls_privkey_sign_data2(priv.get(), scheme, 0, &msg, &sig), 0);
            EXPECT_GE(gnutls_pubkey_verify_data2(pub.get(), scheme, 0, &msg, &sig), 0);
            gnutls_free(sig.data);

            gnutls_digest_algorithm_t h = gnutls_sign_get_hash_algorithm(scheme);
            std::vector<unsigned char> digest(gnutls_hash_get_len(h));
            gnutls_hash_fast(h, text.data(), text.size(), digest.data());
            gnutls_datum_t hd{digest.data(), static_cast<unsigned>(digest.size())};
            ASSERT_GE(gnutls_privkey_sign_hash2(priv.get(), scheme, 0, &hd, &sig), 0);
            EXPECT_GE(gnutls_pubkey_verify_hash2(pub.get(), scheme, 0, &hd, &sig), 0);
            gnutls_free(sig.data);
        }
    }

    static inline fs::path dir_;
    static inline Swtpm* tpm_ = nullptr;
};

TEST_F(TpmKeys, Tss2FilesAndHandlesAreClaimed)
{
    tpm::TpmKeyBackend b;
    EXPECT_TRUE(b.claims(path("ec256.pem")));
    EXPECT_TRUE(b.claims("handle:0x81000010"));
    EXPECT_FALSE(b.claims("pkcs11:token=x"));
    EXPECT_FALSE(b.claims(path("does-not-exist.pem")));
    std::ofstream(path("plain.pem")) << "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    EXPECT_FALSE(b.claims(path("plain.pem")));
}

TEST_F(TpmKeys, EveryKeySignsEverySchemeItDeclares)
{
    for (const char* name : {"ec256.pem", "ec384.pem", "rsa2048.pem"}) {
        SCOPED_TRACE(name);
        auto s = open(path(name));
        EXPECT_EQ(s->backend(), "tpm2");
        expect_signs_everything(*s);
    }
    auto rsa = open(path("rsa2048.pem"));
    auto schemes = rsa->schemes();
    // Raw RSA: PSS with TLS's salt length is made here, so TLS 1.3 works.
    EXPECT_NE(std::find(schemes.begin(), schemes.end(), GNUTLS_SIGN_RSA_PSS_RSAE_SHA256), schemes.end());
    EXPECT_EQ(rsa->algorithm(), GNUTLS_PK_RSA);
    EXPECT_EQ(rsa->bits(), 2048u);
    EXPECT_EQ(open(path("ec384.pem"))->schemes().front(), GNUTLS_SIGN_ECDSA_SECP384R1_SHA384);
}

TEST_F(TpmKeys, PersistentHandleSigns)
{
    auto s = open("handle:0x81000010");
    EXPECT_EQ(s->algorithm(), GNUTLS_PK_ECDSA);
    expect_signs_everything(*s);
}

TEST_F(TpmKeys, KeyAuthorizationIsChecked)
{
    expect_signs_everything(*open(path("rsa-auth.pem"), "s3cret"));
    std::string wrong = open_error(path("rsa-auth.pem"), "wrong");
    EXPECT_NE(wrong.find("GnuTLSPIN"), std::string::npos) << wrong;
    EXPECT_NE(wrong.find("authorization"), std::string::npos) << wrong;
    EXPECT_EQ(wrong.find("wrong"), std::string::npos) << "the PIN leaked: " << wrong;
    EXPECT_NE(open_error(path("rsa-auth.pem")).find("GnuTLSPIN"), std::string::npos);
}

TEST_F(TpmKeys, StartupErrorsSayWhatIsWrong)
{
    std::string foreign = open_error(path("foreign.pem"));
    EXPECT_NE(foreign.find("cannot load the key"), std::string::npos) << foreign;
    EXPECT_NE(foreign.find("0x"), std::string::npos) << foreign; // the decoded response code

    std::string unreachable = open_error(path("ec256.pem"), "", "swtpm:host=127.0.0.1,port=1");
    EXPECT_NE(unreachable.find("no TPM reachable at swtpm:host=127.0.0.1,port=1"), std::string::npos)
        << unreachable;

    EXPECT_NE(open_error("handle:0x81000077").find("no key at persistent handle"), std::string::npos);
    EXPECT_NE(open_error("handle:0x1234").find("not a persistent TPM handle"), std::string::npos);

    std::ofstream(path("broken.pem")) << "-----BEGIN TSS2 PRIVATE KEY-----\nMAMCAQA=\n-----END TSS2 PRIVATE KEY-----\n";
    std::string broken = open_error(path("broken.pem"));
    EXPECT_NE(broken.find("not a valid TSS2 PRIVATE KEY"), std::string::npos) << broken;
}

TEST_F(TpmKeys, KeyFileFieldsAreRead)
{
    std::ifstream in(path("rsa-auth.pem"), std::ios::binary);
    std::string pem((std::istreambuf_iterator<char>(in)), {});
    auto f = tpm::parse_tss2_key({reinterpret_cast<const std::uint8_t*>(pem.data()), pem.size()}, "x");
    EXPECT_EQ(f.type_oid, tpm::loadable_key_oid);
    ASSERT_TRUE(f.empty_auth.has_value());
    EXPECT_FALSE(*f.empty_auth);
    EXPECT_EQ(f.parent, 0x40000001u);
    EXPECT_FALSE(f.public_area.empty());
    EXPECT_FALSE(f.private_area.empty());
}

TEST_F(TpmKeys, SignsThroughTheKeyAgentProcess)
{
    tpm::KeyAgent agent;
    auto ec = open(path("ec256.pem"), "", &agent);
    auto rsa = open(path("rsa2048.pem"), "", &agent);
    ASSERT_TRUE(agent.has_keys());
    pid_t pid = agent.spawn(tpm::AgentSetup{[](int, const std::string&) {}, {}, {}, {}, {}, {}, {}});
    ASSERT_GT(pid, 0);
    EXPECT_TRUE(agent.active());
    // Several threads at once share the agent's one TPM connection.
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&] {
            expect_signs_everything(*ec);
            expect_signs_everything(*rsa);
        });
    for (auto& t : threads)
        t.join();
    agent.stop();
    EXPECT_FALSE(agent.active());
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, WNOHANG), -1); // reaped by stop()
}

// A key the TPM will not load when the agent starts (here: one made on
// another TPM, which the parent's check would have refused) neither stops
// the keys after it from loading nor leaves a "map::at" for itself.
TEST_F(TpmKeys, AKeyThatFailsToLoadInTheAgentDoesNotTakeOthersDown)
{
    tpm::KeyAgent agent;
    tpm::KeySpec bad;
    bad.reference = path("foreign.pem");
    bad.file = tpm::parse_tss2_key(read_file(bad.reference), bad.reference);
    bad.tcti = tpm_->tcti();
    std::size_t bad_index = agent.add_key(bad, tpm::KeyFacts{});
    auto ec = open(path("ec256.pem"), "", &agent);
    std::vector<std::string> log;
    std::mutex log_mutex;
    pid_t pid = agent.spawn(tpm::AgentSetup{[&](int, const std::string& m) {
                                                std::lock_guard l(log_mutex);
                                                log.push_back(m);
                                            },
                                            {}, {}, {}, {}, {}, {}});
    ASSERT_GT(pid, 0);
    expect_signs_everything(*ec);
    std::string text = "x";
    SignRequest req{GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, SignInput::message,
                    {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, 0};
    for (int i = 0; i < 2; ++i) {
        try {
            agent.sign(bad_index, req);
            ADD_FAILURE() << "a key from another TPM signed";
        } catch (const Error& e) {
            std::string what = e.what();
            EXPECT_NE(what.find("cannot load it"), std::string::npos) << what;
            EXPECT_EQ(what.find("map::at"), std::string::npos) << what;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300)); // past the retry interval
    }
    expect_signs_everything(*ec);
    agent.stop();
}

TEST_F(TpmKeys, OutageFailsFastAndRecovers)
{
    auto s = open(path("ec256.pem"));
    expect_signs_everything(*s);
    tpm_->stop();
    std::string text = "x";
    SignRequest req{GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, SignInput::message,
                    {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, 0};
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(s->sign(req), Error);
    EXPECT_EQ(s->health(), SignerHealth::unavailable);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    tpm_->start(); // same state directory: same SRK, the key loads again
    EXPECT_NO_THROW(s->sign(req));
    EXPECT_EQ(s->health(), SignerHealth::ok);
}

} // namespace
} // namespace mgs::test

// The file backend reads every supported encoding and refuses bad input with
// a message that says what is wrong.
#include "keystore/error.h"
#include "keystore/file_signer.h"
#include "keystore/registry.h"
#include "pkcs11/providers.h"
#include "pkcs11/token_signer.h"
#include "tpm/tpm_signer.h"
#include "src/certificate_chain.h"
#include "test_pki.h"

#include <gtest/gtest.h>

namespace mgs::test {
namespace {

Bytes pubkey_of(const Signer& s) { return public_key_der(s.public_key().get()); }

Bytes pubkey_of_cert(const TestIdentity& id)
{
    auto chain = CertificateChain::from_pem(
        {reinterpret_cast<const std::uint8_t*>(id.cert_pem.data()), id.cert_pem.size()}, "cert");
    return public_key_der(chain.leaf_public_key().get());
}

class FileBackendFormats : public ::testing::TestWithParam<KeyType> {};

TEST_P(FileBackendFormats, ReadsPemDerPkcs8AndNativeForms)
{
    const TestIdentity& id = identity_for(GetParam());
    const Bytes expected = pubkey_of_cert(id);
    struct Form {
        const char* name;
        Bytes data;
    };
    std::vector<Form> forms{
        {"native PEM (PKCS#1 / SEC1)", id.export_key(GNUTLS_X509_FMT_PEM, false)},
        {"native DER", id.export_key(GNUTLS_X509_FMT_DER, false)},
        {"PKCS#8 PEM", id.export_key(GNUTLS_X509_FMT_PEM, true)},
        {"PKCS#8 DER", id.export_key(GNUTLS_X509_FMT_DER, true)},
    };
    for (const auto& f : forms) {
        SCOPED_TRACE(f.name);
        auto signer = load_key_bytes(f.data, "key", Secret());
        EXPECT_EQ(signer->algorithm(), GetParam().pk);
        EXPECT_EQ(pubkey_of(*signer), expected);
        EXPECT_FALSE(signer->schemes().empty());
        EXPECT_EQ(signer->backend(), "file");
    }
}

TEST_P(FileBackendFormats, EncryptedPkcs8NeedsTheRightPassphrase)
{
    const TestIdentity& id = identity_for(GetParam());
    for (auto fmt : {GNUTLS_X509_FMT_PEM, GNUTLS_X509_FMT_DER}) {
        Bytes enc = id.export_key(fmt, true, "correct horse");
        auto signer = load_key_bytes(enc, "enc.key", Secret("correct horse"));
        EXPECT_EQ(pubkey_of(*signer), pubkey_of_cert(id));
        try {
            load_key_bytes(enc, "enc.key", Secret("wrong horse"));
            ADD_FAILURE() << "a wrong passphrase was accepted";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("wrong passphrase"), std::string::npos) << e.what();
            EXPECT_EQ(std::string(e.what()).find("wrong horse"), std::string::npos) << "passphrase leaked";
        }
        try {
            load_key_bytes(enc, "enc.key", Secret());
            ADD_FAILURE() << "an encrypted key loaded without a passphrase";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("is encrypted"), std::string::npos) << e.what();
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllKeyTypes, FileBackendFormats, ::testing::ValuesIn(all_key_types()),
                         [](const auto& info) { return info.param.name; });

TEST(FileBackend, MissingFileNamesThePathAndTheReason)
{
    FileKeyBackend backend;
    try {
        backend.open("/nonexistent/dir/key.pem", KeyOptions{});
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "cannot read /nonexistent/dir/key.pem: No such file or directory");
    }
}

TEST(FileBackend, TpmKeysAreNamedNotMisread)
{
    std::string tss2 = "-----BEGIN TSS2 PRIVATE KEY-----\nMIIB\n-----END TSS2 PRIVATE KEY-----\n";
    try {
        load_key_bytes({reinterpret_cast<const std::uint8_t*>(tss2.data()), tss2.size()}, "tpm.pem", Secret());
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("is a TPM 2.0 key"), std::string::npos) << e.what();
    }
    // Each backend claims its own forms; the file backend, last, the rest.
    KeyRegistry registry;
    pkcs11::ProviderSet providers;
    registry.add(std::make_unique<pkcs11::Pkcs11KeyBackend>(providers));
    registry.add(std::make_unique<tpm::TpmKeyBackend>());
    registry.add(std::make_unique<FileKeyBackend>());
    EXPECT_EQ(registry.backend_for("handle:0x81000001")->name(), "tpm2");
    EXPECT_EQ(registry.backend_for("pkcs11:token=x")->name(), "pkcs11");
    EXPECT_EQ(registry.backend_for("/etc/ssl/private/key.pem")->name(), "file");
    EXPECT_FALSE(registry.names_a_file("handle:0x81000001"));
    EXPECT_FALSE(registry.names_a_file("pkcs11:token=x"));
    EXPECT_TRUE(registry.names_a_file("conf/key.pem"));
}

TEST(FileBackend, GarbageIsNotAKey)
{
    Bytes junk{'h', 'e', 'l', 'l', 'o'};
    try {
        load_key_bytes(junk, "junk.pem", Secret());
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("junk.pem is not a private key"), std::string::npos) << e.what();
    }
}

} // namespace
} // namespace mgs::test

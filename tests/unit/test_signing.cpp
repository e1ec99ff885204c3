// Every key type signs what GnuTLS asks for in TLS (PKCS#1 v1.5, RSA-PSS,
// ECDSA, EdDSA), natively and through the import_ext4 binding hardware
// backends use, and each signature verifies with the certificate's key.
#include "keystore/error.h"
#include "keystore/file_signer.h"
#include "src/certificate_chain.h"
#include "src/key_binding.h"
#include "test_pki.h"

#include <gnutls/crypto.h>
#include <gtest/gtest.h>

namespace mgs::test {
namespace {

// Looks like a hardware key to the core: no native key, only sign().
class OutOfProcessLike final : public Signer {
public:
    explicit OutOfProcessLike(std::shared_ptr<Signer> inner) : inner_(std::move(inner)) {}
    std::string describe() const override { return "wrapped " + inner_->describe(); }
    std::string backend() const override { return "test"; }
    gnutls_pk_algorithm_t algorithm() const override { return inner_->algorithm(); }
    unsigned bits() const override { return inner_->bits(); }
    std::vector<gnutls_sign_algorithm_t> schemes() const override { return inner_->schemes(); }
    PubKey public_key() const override { return inner_->public_key(); }
    Bytes sign(const SignRequest& r) override
    {
        ++calls;
        return inner_->sign(r);
    }
    int calls = 0;

private:
    std::shared_ptr<Signer> inner_;
};

PubKey cert_key(const TestIdentity& id)
{
    auto chain = CertificateChain::from_pem(
        {reinterpret_cast<const std::uint8_t*>(id.cert_pem.data()), id.cert_pem.size()}, "cert");
    return chain.leaf_public_key();
}

void expect_verifies(gnutls_pubkey_t pub, gnutls_sign_algorithm_t scheme, const gnutls_datum_t& msg,
                     const gnutls_datum_t& sig)
{
    int rc = gnutls_pubkey_verify_data2(pub, scheme, 0, &msg, &sig);
    EXPECT_GE(rc, 0) << gnutls_sign_get_name(scheme) << ": " << gnutls_strerror(rc);
}

class Signing : public ::testing::TestWithParam<KeyType> {};

TEST_P(Signing, EverySchemeVerifiesWithTheCertificateKey)
{
    const TestIdentity& id = identity_for(GetParam());
    auto file_signer = load_key_bytes(id.export_key(GNUTLS_X509_FMT_PEM, true), "key", Secret());
    auto wrapped = std::make_shared<OutOfProcessLike>(file_signer);
    PubKey pub = cert_key(id);

    std::string text = "TLS 1.3, server CertificateVerify" + GetParam().name;
    gnutls_datum_t msg{reinterpret_cast<unsigned char*>(text.data()), static_cast<unsigned>(text.size())};

    for (Signer* s : {static_cast<Signer*>(file_signer.get()), static_cast<Signer*>(wrapped.get())}) {
        PrivKey bound = bind_signer(*s);
        for (gnutls_sign_algorithm_t scheme : s->schemes()) {
            SCOPED_TRACE(std::string(s->describe()) + " " + gnutls_sign_get_name(scheme));
            GnutlsDatum sig;
            ASSERT_EQ(gnutls_privkey_sign_data2(bound.get(), scheme, 0, &msg, &sig.d), 0);
            expect_verifies(pub.get(), scheme, msg, sig.d);
        }
    }
    EXPECT_GT(wrapped->calls, 0) << "the ext4 binding never called the signer";
}

TEST_P(Signing, PrehashedRequestsVerifyToo)
{
    const TestIdentity& id = identity_for(GetParam());
    auto signer = load_key_bytes(id.export_key(GNUTLS_X509_FMT_DER, false), "key", Secret());
    if (GetParam().pk == GNUTLS_PK_EDDSA_ED25519) {
        // EdDSA signs messages, never digests: asking must fail, not lie.
        std::uint8_t d[32] = {};
        EXPECT_THROW(signer->sign({GNUTLS_SIGN_EDDSA_ED25519, SignInput::digest, {d, sizeof d}, 0}), Error);
        return;
    }
    PubKey pub = cert_key(id);
    unsigned char digest[32];
    const char text[] = "handshake transcript";
    gnutls_hash_fast(GNUTLS_DIG_SHA256, text, sizeof text, digest);
    gnutls_datum_t hash{digest, sizeof digest};
    auto scheme = GetParam().pk == GNUTLS_PK_RSA ? GNUTLS_SIGN_RSA_PSS_RSAE_SHA256 : GNUTLS_SIGN_ECDSA_SHA256;
    Bytes sig = signer->sign({scheme, SignInput::digest, {digest, sizeof digest}, 0});
    gnutls_datum_t s{sig.data(), static_cast<unsigned>(sig.size())};
    EXPECT_GE(gnutls_pubkey_verify_hash2(pub.get(), scheme, 0, &hash, &s), 0);
}

INSTANTIATE_TEST_SUITE_P(AllKeyTypes, Signing, ::testing::ValuesIn(all_key_types()),
                         [](const auto& info) { return info.param.name; });

TEST(Signing, SchemesMatchTheKey)
{
    auto p256 = default_schemes(GNUTLS_PK_ECDSA, 256, GNUTLS_ECC_CURVE_SECP256R1);
    EXPECT_EQ(p256.front(), GNUTLS_SIGN_ECDSA_SECP256R1_SHA256);
    auto rsa = default_schemes(GNUTLS_PK_RSA, 2048, GNUTLS_ECC_CURVE_INVALID);
    EXPECT_NE(std::find(rsa.begin(), rsa.end(), GNUTLS_SIGN_RSA_PSS_RSAE_SHA256), rsa.end());
    EXPECT_EQ(default_schemes(GNUTLS_PK_EDDSA_ED25519, 256, GNUTLS_ECC_CURVE_INVALID),
              std::vector<gnutls_sign_algorithm_t>{GNUTLS_SIGN_EDDSA_ED25519});
}

} // namespace
} // namespace mgs::test

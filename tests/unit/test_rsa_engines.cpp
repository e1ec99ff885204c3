// RSA keys from files sign through libcrypto (the default) or GnuTLS
// (GnuTLSRSASigner): every scheme TLS asks for verifies with the
// certificate's key, PKCS#1 v1.5 signatures are byte for byte GnuTLS's, and
// failures leave no OpenSSL error behind for mod_ssl to find.
#include "keystore/error.h"
#include "keystore/file_signer.h"
#include "keystore/public_key.h"
#include "src/certificate_chain.h"
#include "src/key_binding.h"
#include "test_pki.h"

#include <gnutls/crypto.h>
#include <openssl/err.h>

#include <gtest/gtest.h>

namespace mgs::test {
namespace {

PubKey cert_key(const TestIdentity& id)
{
    auto chain = CertificateChain::from_pem(
        {reinterpret_cast<const std::uint8_t*>(id.cert_pem.data()), id.cert_pem.size()}, "cert");
    return chain.leaf_public_key();
}

const KeyType& rsa(unsigned bits)
{
    for (const auto& k : all_key_types())
        if (k.pk == GNUTLS_PK_RSA && k.bits == bits)
            return k;
    throw std::logic_error("no such RSA key type");
}

std::shared_ptr<Signer> load(const TestIdentity& id, RsaEngine engine)
{
    return load_key_bytes(id.export_key(GNUTLS_X509_FMT_PEM, false), "rsa.key", Secret(), engine);
}

class RsaEngines : public ::testing::TestWithParam<unsigned> {};

TEST_P(RsaEngines, TheDefaultIsLibcryptoAndGnutlsStaysSelectable)
{
    const TestIdentity& id = identity_for(rsa(GetParam()));
    EXPECT_EQ(load(id, RsaEngine::automatic)->engine(), "libcrypto");
    EXPECT_EQ(load(id, RsaEngine::libcrypto)->engine(), "libcrypto");
    auto g = load(id, RsaEngine::gnutls);
    EXPECT_EQ(g->engine(), "gnutls");
    EXPECT_EQ(g->backend(), "file");
    auto l = load(id, RsaEngine::libcrypto);
    EXPECT_EQ(l->backend(), "file");
    EXPECT_EQ(l->bits(), GetParam());
    EXPECT_EQ(l->schemes(), g->schemes());
    EXPECT_EQ(public_key_der(l->public_key().get()), public_key_der(cert_key(id).get()));
    EXPECT_EQ(l->native_privkey(), nullptr) << "libcrypto keys must sign through the Signer, not natively";
}

TEST_P(RsaEngines, EverySchemeVerifiesThroughTheGnutlsBinding)
{
    const TestIdentity& id = identity_for(rsa(GetParam()));
    auto signer = load(id, RsaEngine::libcrypto);
    PubKey pub = cert_key(id);
    PrivKey bound = bind_signer(*signer);
    std::string text = "TLS 1.3 CertificateVerify content";
    gnutls_datum_t msg{reinterpret_cast<unsigned char*>(text.data()), static_cast<unsigned>(text.size())};
    for (gnutls_sign_algorithm_t scheme : signer->schemes()) {
        SCOPED_TRACE(gnutls_sign_get_name(scheme));
        GnutlsDatum sig;
        ASSERT_EQ(gnutls_privkey_sign_data2(bound.get(), scheme, 0, &msg, &sig.d), 0);
        EXPECT_GE(gnutls_pubkey_verify_data2(pub.get(), scheme, 0, &msg, &sig.d), 0);
    }
}

TEST_P(RsaEngines, PrehashedPkcs1AndPssVerify)
{
    const TestIdentity& id = identity_for(rsa(GetParam()));
    auto signer = load(id, RsaEngine::libcrypto);
    PubKey pub = cert_key(id);
    for (auto [scheme, hash] : {std::pair{GNUTLS_SIGN_RSA_SHA256, GNUTLS_DIG_SHA256},
                                std::pair{GNUTLS_SIGN_RSA_SHA384, GNUTLS_DIG_SHA384},
                                std::pair{GNUTLS_SIGN_RSA_SHA1, GNUTLS_DIG_SHA1},
                                std::pair{GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, GNUTLS_DIG_SHA256},
                                std::pair{GNUTLS_SIGN_RSA_PSS_RSAE_SHA512, GNUTLS_DIG_SHA512}}) {
        SCOPED_TRACE(gnutls_sign_get_name(scheme));
        Bytes digest(gnutls_hash_get_len(hash));
        const char text[] = "TLS 1.2 ServerKeyExchange params";
        gnutls_hash_fast(hash, text, sizeof text, digest.data());
        Bytes sig = signer->sign({scheme, SignInput::digest, digest, 0});
        gnutls_datum_t h{digest.data(), static_cast<unsigned>(digest.size())};
        gnutls_datum_t s{sig.data(), static_cast<unsigned>(sig.size())};
        EXPECT_GE(gnutls_pubkey_verify_hash2(pub.get(), scheme, 0, &h, &s), 0);
    }
}

TEST_P(RsaEngines, Pkcs1SignaturesAreGnutlsOwnBytes)
{
    // PKCS#1 v1.5 is deterministic: the two engines must agree exactly.
    const TestIdentity& id = identity_for(rsa(GetParam()));
    auto l = load(id, RsaEngine::libcrypto);
    auto g = load(id, RsaEngine::gnutls);
    const std::uint8_t text[] = "same key, same bytes";
    for (auto scheme : {GNUTLS_SIGN_RSA_SHA256, GNUTLS_SIGN_RSA_SHA512}) {
        SCOPED_TRACE(gnutls_sign_get_name(scheme));
        EXPECT_EQ(l->sign({scheme, SignInput::message, text, 0}), g->sign({scheme, SignInput::message, text, 0}));
    }
}

TEST_P(RsaEngines, Tls10RawRsaOverMd5Sha1Verifies)
{
    // TLS 1.0/1.1 sign the 36-byte MD5+SHA1 concatenation with PKCS#1
    // type 1 padding and no DigestInfo (GNUTLS_SIGN_RSA_RAW).
    const TestIdentity& id = identity_for(rsa(GetParam()));
    auto signer = load(id, RsaEngine::libcrypto);
    PubKey pub = cert_key(id);
    Bytes md5sha1(36);
    const char text[] = "TLS 1.0 params";
    gnutls_hash_fast(GNUTLS_DIG_MD5, text, sizeof text, md5sha1.data());
    gnutls_hash_fast(GNUTLS_DIG_SHA1, text, sizeof text, md5sha1.data() + 16);
    Bytes sig = signer->sign({GNUTLS_SIGN_RSA_RAW, SignInput::digest, md5sha1, 0});
    EXPECT_EQ(sig, load(id, RsaEngine::gnutls)->sign({GNUTLS_SIGN_RSA_RAW, SignInput::digest, md5sha1, 0}));
    gnutls_datum_t h{md5sha1.data(), static_cast<unsigned>(md5sha1.size())};
    gnutls_datum_t s{sig.data(), static_cast<unsigned>(sig.size())};
    EXPECT_GE(gnutls_pubkey_verify_hash2(pub.get(), GNUTLS_SIGN_UNKNOWN, GNUTLS_PUBKEY_VERIFY_FLAG_TLS1_RSA, &h, &s),
              0);
}

TEST_P(RsaEngines, BadRequestsFailCleanly)
{
    const TestIdentity& id = identity_for(rsa(GetParam()));
    auto signer = load(id, RsaEngine::libcrypto);
    // Errors other code left on this thread's queue (tpm2-tss's ESYS uses
    // libcrypto too) are not ours to remove: start from an empty queue.
    ERR_clear_error();
    Bytes short_digest(20, 1);
    EXPECT_THROW(signer->sign({GNUTLS_SIGN_RSA_SHA256, SignInput::digest, short_digest, 0}), Error);
    EXPECT_THROW(signer->sign({GNUTLS_SIGN_ECDSA_SHA256, SignInput::message, short_digest, 0}), Error);
    Bytes too_long(GetParam() / 8, 0xff); // no room for PKCS#1 padding
    EXPECT_THROW(signer->sign({GNUTLS_SIGN_RSA_RAW, SignInput::digest, too_long, 0}), Error);
    EXPECT_EQ(ERR_peek_error(), 0UL) << "an OpenSSL error was left on the thread's queue";
    // And an error queued before a failure stays for its owner.
    ERR_raise_data(ERR_LIB_USER, 1, "someone else's error");
    EXPECT_THROW(signer->sign({GNUTLS_SIGN_RSA_RAW, SignInput::digest, too_long, 0}), Error);
    EXPECT_EQ(ERR_GET_LIB(ERR_peek_last_error()), ERR_LIB_USER);
    ERR_clear_error();
}

TEST_P(RsaEngines, AKeyThatMustDecryptStaysWithGnutls)
{
    // RSA key exchange decrypts with the key: only GnuTLS's constant-time
    // decryption may do that, so auto keeps GnuTLS and libcrypto refuses.
    const TestIdentity& id = identity_for(rsa(GetParam()));
    Bytes pem = id.export_key(GNUTLS_X509_FMT_PEM, false);
    auto signer = load_key_bytes(pem, "rsa.key", Secret(), RsaEngine::automatic, true);
    EXPECT_EQ(signer->engine(), "gnutls");
    EXPECT_NE(signer->native_privkey(), nullptr);
    try {
        load_key_bytes(pem, "rsa.key", Secret(), RsaEngine::libcrypto, true);
        FAIL() << "libcrypto took a key that must decrypt";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("GnuTLSRSASigner libcrypto cannot serve TLS 1.2's RSA key exchange"),
                  std::string::npos)
            << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(Sizes, RsaEngines, ::testing::Values(2048u, 3072u),
                         [](const auto& info) { return "rsa" + std::to_string(info.param); });

TEST(RsaEngines, OtherKeysKeepGnutls)
{
    for (const auto& type : all_key_types()) {
        if (type.pk == GNUTLS_PK_RSA)
            continue;
        SCOPED_TRACE(type.name);
        auto signer = load_key_bytes(identity_for(type).export_key(GNUTLS_X509_FMT_PEM, false), "key", Secret(),
                                     RsaEngine::libcrypto);
        EXPECT_EQ(signer->engine(), "gnutls");
        EXPECT_NE(signer->native_privkey(), nullptr);
    }
}

} // namespace
} // namespace mgs::test

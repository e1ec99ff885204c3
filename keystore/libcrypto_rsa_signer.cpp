#include "keystore/libcrypto_rsa_signer.h"

#include "keystore/error.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include <gnutls/crypto.h>

namespace mgs {

namespace {

template <auto Free>
struct OsslDeleter {
    template <typename T>
    void operator()(T* p) const noexcept { Free(p); }
};
using EvpPkey = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY_free>>;
using EvpPkeyCtx = std::unique_ptr<EVP_PKEY_CTX, OsslDeleter<EVP_PKEY_CTX_free>>;
using EvpMdCtx = std::unique_ptr<EVP_MD_CTX, OsslDeleter<EVP_MD_CTX_free>>;
using Bignum = std::unique_ptr<BIGNUM, OsslDeleter<BN_clear_free>>;
using ParamBuild = std::unique_ptr<OSSL_PARAM_BLD, OsslDeleter<OSSL_PARAM_BLD_free>>;
// OpenSSL 3.0 has no OSSL_PARAM_clear_free (3.2 does): each value is
// cleansed, then the array freed.
void params_clear_free(OSSL_PARAM* params) noexcept
{
    for (OSSL_PARAM* p = params; p && p->key; ++p)
        if (p->data && p->data_size)
            OPENSSL_cleanse(p->data, p->data_size);
    OSSL_PARAM_free(params);
}
using Params = std::unique_ptr<OSSL_PARAM, OsslDeleter<params_clear_free>>;
using BnCtx = std::unique_ptr<BN_CTX, OsslDeleter<BN_CTX_free>>;

// OpenSSL's error queue is per thread and shared with mod_ssl in the same
// process: what our calls queue is removed again, and only that, however
// the scope ends.
class ErrorMark {
public:
    ErrorMark() { ERR_set_mark(); }
    ~ErrorMark() { ERR_pop_to_mark(); }
    ErrorMark(const ErrorMark&) = delete;
    ErrorMark& operator=(const ErrorMark&) = delete;

    // The last error our calls queued (read before anything allocates).
    std::string last() const
    {
        unsigned long e = ERR_peek_last_error();
        char buf[256] = "no OpenSSL error queued";
        if (e != 0)
            ERR_error_string_n(e, buf, sizeof buf);
        return buf;
    }
};

// A GnuTLS datum GnuTLS allocated, wiped before it is freed.
struct SecretDatum {
    gnutls_datum_t d{nullptr, 0};
    SecretDatum() = default;
    SecretDatum(const SecretDatum&) = delete;
    SecretDatum& operator=(const SecretDatum&) = delete;
    ~SecretDatum()
    {
        if (d.data)
            gnutls_memset(d.data, 0, d.size);
        gnutls_free(d.data);
    }
    Bignum bn() const { return Bignum(BN_bin2bn(d.data, static_cast<int>(d.size), nullptr)); }
};

const EVP_MD* md_of(gnutls_digest_algorithm_t h)
{
    switch (h) {
    case GNUTLS_DIG_SHA1: return EVP_sha1();
    case GNUTLS_DIG_SHA224: return EVP_sha224();
    case GNUTLS_DIG_SHA256: return EVP_sha256();
    case GNUTLS_DIG_SHA384: return EVP_sha384();
    case GNUTLS_DIG_SHA512: return EVP_sha512();
    default: return nullptr;
    }
}

bool is_pss(gnutls_sign_algorithm_t s)
{
    return s == GNUTLS_SIGN_RSA_PSS_RSAE_SHA256 || s == GNUTLS_SIGN_RSA_PSS_RSAE_SHA384 ||
           s == GNUTLS_SIGN_RSA_PSS_RSAE_SHA512;
}

bool is_pkcs1(gnutls_sign_algorithm_t s)
{
    return s == GNUTLS_SIGN_RSA_SHA1 || s == GNUTLS_SIGN_RSA_SHA224 || s == GNUTLS_SIGN_RSA_SHA256 ||
           s == GNUTLS_SIGN_RSA_SHA384 || s == GNUTLS_SIGN_RSA_SHA512;
}

// Padding (and, for PSS, salt = hash length as TLS 1.3 requires, MGF1 with
// the same hash) on a context already initialised for signing.
bool set_padding(EVP_PKEY_CTX* ctx, bool pss, const EVP_MD* md)
{
    if (!pss)
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0;
}

class LibcryptoRsaSigner final : public Signer {
public:
    LibcryptoRsaSigner(EvpPkey key, gnutls_pubkey_t pub, std::string source)
        : key_(std::move(key)), source_(std::move(source)), bits_(static_cast<unsigned>(EVP_PKEY_get_bits(key_.get())))
    {
        GnutlsDatum der;
        if (int rc = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der.d); rc < 0)
            throw_gnutls("cannot export the public key of " + source_, rc);
        public_der_ = der.bytes();
    }

    std::string describe() const override { return source_; }
    std::string backend() const override { return "file"; }
    std::string engine() const override { return "libcrypto"; }
    gnutls_pk_algorithm_t algorithm() const override { return GNUTLS_PK_RSA; }
    unsigned bits() const override { return bits_; }
    std::vector<gnutls_sign_algorithm_t> schemes() const override
    {
        return default_schemes(GNUTLS_PK_RSA, bits_, GNUTLS_ECC_CURVE_INVALID);
    }

    PubKey public_key() const override
    {
        PubKey pub = new_pubkey();
        gnutls_datum_t d{const_cast<unsigned char*>(public_der_.data()), static_cast<unsigned>(public_der_.size())};
        if (int rc = gnutls_pubkey_import(pub.get(), &d, GNUTLS_X509_FMT_DER); rc < 0)
            throw_gnutls("cannot read back the public key of " + source_, rc);
        return pub;
    }

    Bytes sign(const SignRequest& req) override
    {
        Bytes sig(static_cast<std::size_t>(EVP_PKEY_get_size(key_.get())));
        std::size_t len = sig.size();
        ErrorMark mark;
        if (req.scheme == GNUTLS_SIGN_RSA_RAW) {
            // TLS 1.0/1.1's MD5+SHA1, or a DigestInfo: PKCS#1 v1.5 type 1
            // padding around the input as it is.
            EvpPkeyCtx ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
            if (!ctx || EVP_PKEY_sign_init(ctx.get()) <= 0 || !set_padding(ctx.get(), false, nullptr) ||
                EVP_PKEY_sign(ctx.get(), sig.data(), &len, req.input.data(), req.input.size()) <= 0)
                fail(mark, "a raw PKCS#1 v1.5 signature");
        } else {
            const bool pss = is_pss(req.scheme);
            const EVP_MD* md = pss || is_pkcs1(req.scheme) ? md_of(gnutls_sign_get_hash_algorithm(req.scheme)) : nullptr;
            if (!md)
                throw Error("signing with " + source_ + ": scheme " + scheme_name(req.scheme) +
                            " is not an RSA scheme this key signs");
            if (req.kind == SignInput::message) {
                EvpMdCtx mdctx(EVP_MD_CTX_new());
                EVP_PKEY_CTX* pctx = nullptr; // owned by mdctx
                if (!mdctx || EVP_DigestSignInit(mdctx.get(), &pctx, md, nullptr, key_.get()) <= 0 ||
                    !set_padding(pctx, pss, md) ||
                    EVP_DigestSign(mdctx.get(), sig.data(), &len, req.input.data(), req.input.size()) <= 0)
                    fail(mark, scheme_name(req.scheme));
            } else {
                if (req.input.size() != static_cast<std::size_t>(EVP_MD_get_size(md)))
                    throw Error("signing with " + source_ + ": a " + std::to_string(req.input.size()) +
                                "-byte digest for " + scheme_name(req.scheme));
                EvpPkeyCtx ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
                if (!ctx || EVP_PKEY_sign_init(ctx.get()) <= 0 || !set_padding(ctx.get(), pss, md) ||
                    EVP_PKEY_CTX_set_signature_md(ctx.get(), md) <= 0 ||
                    EVP_PKEY_sign(ctx.get(), sig.data(), &len, req.input.data(), req.input.size()) <= 0)
                    fail(mark, scheme_name(req.scheme));
            }
        }
        sig.resize(len);
        return sig;
    }

private:
    static std::string scheme_name(gnutls_sign_algorithm_t s)
    {
        const char* n = gnutls_sign_get_name(s);
        return n ? n : "#" + std::to_string(static_cast<int>(s));
    }

    [[noreturn]] void fail(const ErrorMark& mark, const std::string& what) const
    {
        std::string why = mark.last();
        throw Error("signing with " + source_ + " (libcrypto, " + what + ") failed: " + why);
    }

    EvpPkey key_;
    std::string source_;
    unsigned bits_;
    Bytes public_der_;
};

// libcrypto's copy of the key, built from GnuTLS's numbers: no DER of the
// private key is made (OpenSSL's decoders free their copies unwiped), and
// every intermediate copy is wiped (GnuTLS's data, the BIGNUMs, the
// OSSL_PARAM array). The CRT coefficient is computed here (q^-1 mod p) so
// that no convention about GnuTLS's "u" matters: a wrong one would go
// unnoticed, as libcrypto falls back to plain exponentiation when its CRT
// check fails.
EvpPkey to_libcrypto(gnutls_x509_privkey_t key, const std::string& source)
{
    SecretDatum m, e, d, p, q, u, e1, e2;
    if (int rc = gnutls_x509_privkey_export_rsa_raw2(key, &m.d, &e.d, &d.d, &p.d, &q.d, &u.d, &e1.d, &e2.d); rc < 0)
        throw_gnutls("cannot hand the RSA key in " + source + " to libcrypto", rc);
    ErrorMark mark;
    Bignum n_bn = m.bn(), e_bn = e.bn(), d_bn = d.bn(), p_bn = p.bn(), q_bn = q.bn(), dp_bn = e1.bn(),
           dq_bn = e2.bn(), qinv_bn(BN_secure_new());
    BnCtx bn_ctx(BN_CTX_secure_new());
    EvpPkey out;
    if (n_bn && e_bn && d_bn && p_bn && q_bn && dp_bn && dq_bn && qinv_bn && bn_ctx &&
        BN_mod_inverse(qinv_bn.get(), q_bn.get(), p_bn.get(), bn_ctx.get())) {
        ParamBuild bld(OSSL_PARAM_BLD_new());
        if (bld && OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n_bn.get()) &&
            OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e_bn.get()) &&
            OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_D, d_bn.get()) &&
            OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_FACTOR1, p_bn.get()) &&
            OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_FACTOR2, q_bn.get()) &&
            OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_EXPONENT1, dp_bn.get()) &&
            OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_EXPONENT2, dq_bn.get()) &&
            OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qinv_bn.get())) {
            Params params(OSSL_PARAM_BLD_to_param(bld.get()));
            EvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
            EVP_PKEY* k = nullptr;
            if (params && ctx && EVP_PKEY_fromdata_init(ctx.get()) > 0 &&
                EVP_PKEY_fromdata(ctx.get(), &k, EVP_PKEY_KEYPAIR, params.get()) > 0)
                out.reset(k);
        }
    }
    if (!out) {
        std::string why = mark.last();
        throw Error("libcrypto cannot take the RSA key in " + source + ": " + why);
    }
    return out;
}

// The two requests GnuTLS makes in handshakes (src/key_binding.cpp's
// sign_hash callback), verified by GnuTLS with the key's public half: a key
// libcrypto holds differently from GnuTLS never reaches a handshake. PKCS#1
// v1.5 comes as GNUTLS_SIGN_RSA_RAW over a DigestInfo, PSS as a digest.
// Run on a copy of the key: signing creates libcrypto's blinding state,
// which the serving key must first get in each child, not inherit from
// the parent (prefork children would all share the parent's).
void self_test(const EvpPkey& key, gnutls_pubkey_t pub, const std::string& source)
{
    static constexpr std::uint8_t sha256_info[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                   0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    std::uint8_t digest[32];
    static constexpr char message[] = "mod_gnutls libcrypto RSA self-test";
    gnutls_hash_fast(GNUTLS_DIG_SHA256, message, sizeof message, digest);
    Bytes info(sha256_info, sha256_info + sizeof sha256_info);
    info.insert(info.end(), digest, digest + sizeof digest);

    EvpPkey copy;
    {
        ErrorMark mark;
        copy.reset(EVP_PKEY_dup(key.get()));
        if (!copy) {
            std::string why = mark.last();
            throw Error("libcrypto cannot copy the RSA key in " + source + ": " + why);
        }
    }
    LibcryptoRsaSigner tester(std::move(copy), pub, source);
    gnutls_datum_t h{digest, sizeof digest};
    struct Case {
        gnutls_sign_algorithm_t request, verify_as;
        SignInput kind;
        std::span<const std::uint8_t> input;
    };
    for (const Case& c : {Case{GNUTLS_SIGN_RSA_RAW, GNUTLS_SIGN_RSA_SHA256, SignInput::digest, info},
                          Case{GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, SignInput::digest,
                               {digest, sizeof digest}}}) {
        Bytes sig = tester.sign({c.request, c.kind, c.input, 0});
        gnutls_datum_t sd{sig.data(), static_cast<unsigned>(sig.size())};
        if (int rc = gnutls_pubkey_verify_hash2(pub, c.verify_as, 0, &h, &sd); rc < 0)
            throw_gnutls("the libcrypto signature of " + source + " (" + gnutls_sign_get_name(c.verify_as) +
                             ") does not verify with its public key",
                         rc);
    }
}

} // namespace

std::shared_ptr<Signer> make_libcrypto_rsa_signer(gnutls_x509_privkey_t key, const std::string& source)
{
    PubKey pub = new_pubkey();
    {
        SecretDatum m, e, d, p, q, u, e1, e2; // only n and e are used
        int rc = gnutls_x509_privkey_export_rsa_raw2(key, &m.d, &e.d, &d.d, &p.d, &q.d, &u.d, &e1.d, &e2.d);
        if (rc >= 0)
            rc = gnutls_pubkey_import_rsa_raw(pub.get(), &m.d, &e.d);
        if (rc < 0)
            throw_gnutls("cannot derive the public key of " + source, rc);
    }
    EvpPkey k = to_libcrypto(key, source);
    self_test(k, pub.get(), source);
    return std::make_shared<LibcryptoRsaSigner>(std::move(k), pub.get(), source);
}

} // namespace mgs

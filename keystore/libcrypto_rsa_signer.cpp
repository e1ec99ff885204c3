#include "keystore/libcrypto_rsa_signer.h"

#include "keystore/error.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

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

// The oldest error OpenSSL queued on this thread, and the queue emptied: it
// is per thread, and mod_ssl in the same process must not find our errors.
std::string take_openssl_error()
{
    unsigned long e = ERR_get_error();
    std::string text = "no OpenSSL error queued";
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        text = buf;
    }
    ERR_clear_error();
    return text;
}

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
        if (req.scheme == GNUTLS_SIGN_RSA_RAW) {
            // TLS 1.0/1.1's MD5+SHA1, or a DigestInfo: PKCS#1 v1.5 type 1
            // padding around the input as it is.
            EvpPkeyCtx ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
            if (!ctx || EVP_PKEY_sign_init(ctx.get()) <= 0 || !set_padding(ctx.get(), false, nullptr) ||
                EVP_PKEY_sign(ctx.get(), sig.data(), &len, req.input.data(), req.input.size()) <= 0)
                fail("a raw PKCS#1 v1.5 signature");
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
                    fail(scheme_name(req.scheme));
            } else {
                if (req.input.size() != static_cast<std::size_t>(EVP_MD_get_size(md)))
                    throw Error("signing with " + source_ + ": a " + std::to_string(req.input.size()) +
                                "-byte digest for " + scheme_name(req.scheme));
                EvpPkeyCtx ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
                if (!ctx || EVP_PKEY_sign_init(ctx.get()) <= 0 || !set_padding(ctx.get(), pss, md) ||
                    EVP_PKEY_CTX_set_signature_md(ctx.get(), md) <= 0 ||
                    EVP_PKEY_sign(ctx.get(), sig.data(), &len, req.input.data(), req.input.size()) <= 0)
                    fail(scheme_name(req.scheme));
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

    [[noreturn]] void fail(const std::string& what) const
    {
        throw Error("signing with " + source_ + " (libcrypto, " + what + ") failed: " + take_openssl_error());
    }

    EvpPkey key_;
    std::string source_;
    unsigned bits_;
    Bytes public_der_;
};

// libcrypto's copy of the key, from GnuTLS's: a plain PKCS#8 DER in
// between, wiped as soon as OpenSSL has parsed it.
EvpPkey to_libcrypto(gnutls_x509_privkey_t key, const std::string& source)
{
    GnutlsDatum der;
    if (int rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_DER, nullptr, GNUTLS_PKCS_PLAIN, &der.d);
        rc < 0)
        throw_gnutls("cannot hand the RSA key in " + source + " to libcrypto", rc);
    const unsigned char* p = der.d.data;
    EvpPkey k(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.d.size)));
    gnutls_memset(der.d.data, 0, der.d.size);
    if (!k || EVP_PKEY_get_base_id(k.get()) != EVP_PKEY_RSA)
        throw Error("libcrypto cannot read the RSA key in " + source + ": " + take_openssl_error());
    return k;
}

// One signature per padding, verified by GnuTLS with the key's public half:
// a key libcrypto holds differently from GnuTLS never reaches a handshake.
void self_test(Signer& signer, gnutls_pubkey_t pub)
{
    static constexpr std::uint8_t message[] = "mod_gnutls libcrypto RSA self-test";
    for (auto scheme : {GNUTLS_SIGN_RSA_SHA256, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256}) {
        Bytes sig = signer.sign({scheme, SignInput::message, message, 0});
        gnutls_datum_t m{const_cast<std::uint8_t*>(message), sizeof message};
        gnutls_datum_t s{sig.data(), static_cast<unsigned>(sig.size())};
        if (int rc = gnutls_pubkey_verify_data2(pub, scheme, 0, &m, &s); rc < 0)
            throw_gnutls("the libcrypto signature of " + signer.describe() + " (" + gnutls_sign_get_name(scheme) +
                             ") does not verify with its public key",
                         rc);
    }
}

} // namespace

std::shared_ptr<Signer> make_libcrypto_rsa_signer(gnutls_x509_privkey_t key, const std::string& source)
{
    PubKey pub = new_pubkey();
    {
        PrivKey gkey = new_privkey(); // GnuTLS's copy only long enough for the public half
        if (int rc = gnutls_privkey_import_x509(gkey.get(), key, GNUTLS_PRIVKEY_IMPORT_COPY); rc < 0)
            throw_gnutls("cannot use the key in " + source, rc);
        if (int rc = gnutls_pubkey_import_privkey(pub.get(), gkey.get(), 0, 0); rc < 0)
            throw_gnutls("cannot derive the public key of " + source, rc);
    }
    auto signer = std::make_shared<LibcryptoRsaSigner>(to_libcrypto(key, source), pub.get(), source);
    self_test(*signer, pub.get());
    return signer;
}

} // namespace mgs

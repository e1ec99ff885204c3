#include "keystore/file_signer.h"
#include "keystore/private_pem.h"

#include "keystore/error.h"
#include "keystore/file_io.h"

namespace mgs {

namespace {

class FileSigner final : public Signer {
public:
    FileSigner(X509PrivKey key, std::string source) : key_(std::move(key)), source_(std::move(source))
    {
        pk_ = static_cast<gnutls_pk_algorithm_t>(gnutls_x509_privkey_get_pk_algorithm2(key_.get(), &bits_));
        if (pk_ == GNUTLS_PK_ECDSA) {
            gnutls_datum_t x{}, y{}, k{};
            if (gnutls_x509_privkey_export_ecc_raw(key_.get(), &curve_, &x, &y, &k) == 0) {
                gnutls_free(x.data);
                gnutls_free(y.data);
                gnutls_memset(k.data, 0, k.size);
                gnutls_free(k.data);
            }
        }
        signing_key_ = native_privkey();
    }

    std::string describe() const override { return source_; }
    std::string backend() const override { return "file"; }
    std::string engine() const override { return "gnutls"; }
    gnutls_pk_algorithm_t algorithm() const override { return pk_; }
    unsigned bits() const override { return bits_; }
    std::vector<gnutls_sign_algorithm_t> schemes() const override { return default_schemes(pk_, bits_, curve_); }

    PubKey public_key() const override
    {
        PubKey pub = new_pubkey();
        if (int rc = gnutls_pubkey_import_privkey(pub.get(), signing_key_.get(), 0, 0); rc < 0)
            throw_gnutls("cannot derive the public key of " + source_, rc);
        return pub;
    }

    Bytes sign(const SignRequest& req) override
    {
        gnutls_datum_t in{const_cast<unsigned char*>(req.input.data()), static_cast<unsigned>(req.input.size())};
        GnutlsDatum sig;
        int rc = req.kind == SignInput::message
                     ? gnutls_privkey_sign_data2(signing_key_.get(), req.scheme, req.gnutls_flags, &in, &sig.d)
                     : gnutls_privkey_sign_hash2(signing_key_.get(), req.scheme, req.gnutls_flags, &in, &sig.d);
        if (rc < 0)
            throw_gnutls("signing with " + source_ + " failed", rc);
        return Bytes(sig.d.data, sig.d.data + sig.d.size);
    }

    PrivKey native_privkey() const override
    {
        PrivKey k = new_privkey();
        if (int rc = gnutls_privkey_import_x509(k.get(), key_.get(), GNUTLS_PRIVKEY_IMPORT_COPY); rc < 0)
            throw_gnutls("cannot use the key in " + source_, rc);
        return k;
    }

private:
    X509PrivKey key_;
    PrivKey signing_key_;
    std::string source_;
    gnutls_pk_algorithm_t pk_ = GNUTLS_PK_UNKNOWN;
    unsigned bits_ = 0;
    gnutls_ecc_curve_t curve_ = GNUTLS_ECC_CURVE_INVALID;
};

bool is_encrypted(std::span<const std::uint8_t> data, bool pem)
{
    if (pem)
        return has_pem_label(data, "ENCRYPTED PRIVATE KEY") ||
               std::string_view(reinterpret_cast<const char*>(data.data()), data.size())
                       .find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos;
    // DER: an EncryptedPrivateKeyInfo is the only encrypted form.
    gnutls_datum_t d{const_cast<unsigned char*>(data.data()), static_cast<unsigned>(data.size())};
    unsigned schema = 0, cipher = 0;
    return gnutls_pkcs8_info(&d, GNUTLS_X509_FMT_DER, &schema, &cipher, nullptr, nullptr, nullptr, nullptr) == 0 &&
           schema != GNUTLS_PKCS_PLAIN;
}

} // namespace

std::shared_ptr<Signer> FileKeyBackend::open(std::string_view reference, const KeyOptions& options) const
{
    std::string path(reference);
    Bytes data = read_file(path);
    // The key file's bytes are wiped however loading ends (a wrong
    // passphrase throws).
    struct Wipe {
        Bytes& b;
        ~Wipe() { gnutls_memset(b.data(), 0, b.size()); }
    } wipe{data};
    std::string fallback;
    auto signer = load_key_bytes(data, path, options.pin, options.rsa_engine, options.rsa_decrypts, &fallback);
    if (!fallback.empty() && options.notice)
        options.notice(path + ": RSA signatures by GnuTLS, not libcrypto (GnuTLSRSASigner auto): " + fallback);
    return signer;
}

std::shared_ptr<Signer> load_key_bytes(std::span<const std::uint8_t> data, const std::string& source,
                                       const Secret& passphrase, RsaEngine rsa, bool decrypts,
                                       std::string* fallback_reason)
{
    if (has_pem_label(data, "TSS2 PRIVATE KEY"))
        throw Error(source + " is a TPM 2.0 key (TSS2 PRIVATE KEY): only the TPM backend loads it");
    const bool pem = looks_like_pem(data);
    const bool encrypted = is_encrypted(data, pem);
    if (encrypted && passphrase.empty())
        throw Error(source + " is encrypted and no passphrase is configured (GnuTLSPIN or GnuTLSPINSource)");

    X509PrivKey key = new_x509_privkey();
    // Unencrypted PEM is decoded here (private_pem.h says why); wiped after.
    std::optional<Bytes> der = pem && !encrypted ? private_key_pem_to_der(data) : std::nullopt;
    struct WipeDer {
        std::optional<Bytes>& b;
        ~WipeDer()
        {
            if (b)
                gnutls_memset(b->data(), 0, b->size());
        }
    } wipe_der{der};
    gnutls_datum_t d = der ? gnutls_datum_t{der->data(), static_cast<unsigned>(der->size())}
                           : gnutls_datum_t{const_cast<unsigned char*>(data.data()), static_cast<unsigned>(data.size())};
    int rc = gnutls_x509_privkey_import2(key.get(), &d, pem && !der ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER,
                                         encrypted ? passphrase.reveal() : nullptr,
                                         encrypted ? 0 : GNUTLS_PKCS_PLAIN);
    if (rc < 0) {
        if (encrypted)
            throw Error(source + ": wrong passphrase (GnuTLSPIN), or the encrypted key is damaged: " +
                        gnutls_error_text(rc));
        throw Error(source + " is not a private key this module reads (PEM or DER; PKCS#1, PKCS#8, SEC1): " +
                    gnutls_error_text(rc));
    }

    unsigned bits = 0;
    auto pk = static_cast<gnutls_pk_algorithm_t>(gnutls_x509_privkey_get_pk_algorithm2(key.get(), &bits));
    switch (pk) {
    case GNUTLS_PK_RSA:
    case GNUTLS_PK_ECDSA:
    case GNUTLS_PK_EDDSA_ED25519:
    case GNUTLS_PK_EDDSA_ED448:
        break;
    default:
        throw Error(source + " holds a " + std::string(gnutls_pk_get_name(pk) ? gnutls_pk_get_name(pk) : "unknown") +
                    " key; supported are RSA, ECDSA and EdDSA");
    }
    if (pk == GNUTLS_PK_RSA && rsa == RsaEngine::libcrypto && decrypts)
        throw Error(source + ": GnuTLSRSASigner libcrypto cannot serve TLS 1.2's RSA key exchange, which "
                             "GnuTLSPriorities allows: decrypting the client's secret needs GnuTLS's constant-time "
                             "RSA decryption. Remove RSA key exchange (-RSA) or use GnuTLSRSASigner auto");
    // auto leaves a key that decrypts, and GnuTLS's FIPS 140 mode, to GnuTLS.
    const bool use_libcrypto = rsa == RsaEngine::libcrypto ||
                               (rsa == RsaEngine::automatic && !decrypts && !gnutls_fips140_mode_enabled());
    if (pk == GNUTLS_PK_RSA && use_libcrypto) {
        try {
            return make_libcrypto_rsa_signer(key.get(), source);
        } catch (const Error& e) {
            if (rsa == RsaEngine::libcrypto)
                throw Error(std::string(e.what()) + " (GnuTLSRSASigner libcrypto; 'auto' would sign with GnuTLS)");
            if (fallback_reason)
                *fallback_reason = e.what();
        }
    }
    return std::make_shared<FileSigner>(std::move(key), source);
}

} // namespace mgs

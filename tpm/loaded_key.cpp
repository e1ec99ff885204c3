#include "tpm/loaded_key.h"

#include <gnutls/crypto.h>
#include <tss2/tss2_mu.h>

#include <cstring>
#include <memory>

namespace mgs::tpm {

namespace {

// An authorization value on the stack, wiped when it goes out of scope (ESYS
// copies it into its own object metadata; no other copy is left behind).
class AuthValue {
public:
    AuthValue() = default; // empty authorization
    AuthValue(const Secret& s, const std::string& what)
    {
        if (s.size() > sizeof a_.buffer)
            throw Error(what + " is longer than the TPM accepts (" + std::to_string(sizeof a_.buffer) + " bytes)");
        a_.size = static_cast<UINT16>(s.size());
        std::memcpy(a_.buffer, s.reveal(), s.size());
    }
    ~AuthValue() { explicit_bzero(&a_, sizeof a_); }
    AuthValue(const AuthValue&) = delete;
    AuthValue& operator=(const AuthValue&) = delete;
    const TPM2B_AUTH* get() const { return &a_; }

private:
    TPM2B_AUTH a_{};
};

// The storage root key template every TSS2 key writer uses (tpm2-openssl,
// tpm2-tss-engine, GnuTLS): ECC P-256 (or RSA-2048), AES-128-CFB, empty
// unique, so that it derives the same SRK as the program that made the key.
TPM2B_PUBLIC srk_template(bool rsa)
{
    TPM2B_PUBLIC t{};
    TPMT_PUBLIC& p = t.publicArea;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                         TPMA_OBJECT_NODA | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN;
    if (rsa) {
        p.type = TPM2_ALG_RSA;
        p.parameters.rsaDetail.symmetric = {TPM2_ALG_AES, {128}, {TPM2_ALG_CFB}};
        p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        p.parameters.rsaDetail.keyBits = 2048;
        p.parameters.rsaDetail.exponent = 0;
    } else {
        p.type = TPM2_ALG_ECC;
        p.parameters.eccDetail.symmetric = {TPM2_ALG_AES, {128}, {TPM2_ALG_CFB}};
        p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    }
    return t;
}

void check(TSS2_RC rc, const std::string& what)
{
    if (rc != TSS2_RC_SUCCESS)
        throw TpmError(what, rc);
}

} // namespace

TPMI_ALG_HASH tpm_hash_alg(gnutls_digest_algorithm_t h)
{
    switch (h) {
    case GNUTLS_DIG_SHA1: return TPM2_ALG_SHA1;
    case GNUTLS_DIG_SHA256: return TPM2_ALG_SHA256;
    case GNUTLS_DIG_SHA384: return TPM2_ALG_SHA384;
    case GNUTLS_DIG_SHA512: return TPM2_ALG_SHA512;
    default: return TPM2_ALG_ERROR;
    }
}

LoadedKey::LoadedKey(TpmContext& tpm, const KeySpec& spec) : tpm_(tpm)
{
    ESYS_CONTEXT* ctx = tpm.esys();
    if (spec.file) {
        const Tss2KeyFile& f = *spec.file;
        TPM2B_PUBLIC pub{};
        TPM2B_PRIVATE priv{};
        std::size_t off = 0;
        if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(f.public_area.data(), f.public_area.size(), &off, &pub) !=
            TSS2_RC_SUCCESS)
            throw Error(spec.reference + ": the public part of the TSS2 key is malformed");
        off = 0;
        if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(f.private_area.data(), f.private_area.size(), &off, &priv) !=
            TSS2_RC_SUCCESS)
            throw Error(spec.reference + ": the private part of the TSS2 key is malformed");

        ESYS_TR parent = ESYS_TR_NONE;
        bool parent_transient = false;
        // 0 and the owner hierarchy both mean "the owner SRK" (writers differ).
        if (f.parent == TPM2_RH_OWNER || f.parent == 0) {
            AuthValue owner(spec.parent_auth, "GnuTLSSRKPIN");
            check(Esys_TR_SetAuth(ctx, ESYS_TR_RH_OWNER, owner.get()), "cannot set the owner authorization");
            TPM2B_SENSITIVE_CREATE sensitive{};
            TPM2B_PUBLIC tmpl = srk_template(f.rsa_parent);
            TPM2B_DATA outside{};
            TPML_PCR_SELECTION pcrs{};
            TSS2_RC rc = Esys_CreatePrimary(ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                            &sensitive, &tmpl, &outside, &pcrs, &parent, nullptr, nullptr,
                                            nullptr, nullptr);
            if ((rc & ~TPM2_RC_N_MASK) == TPM2_RC_BAD_AUTH || (rc & ~TPM2_RC_N_MASK) == TPM2_RC_AUTH_FAIL)
                throw TpmError("the TPM refused the owner hierarchy authorization (GnuTLSSRKPIN) while creating "
                               "the storage root key",
                               rc);
            check(rc, "cannot create the storage root key in the owner hierarchy");
            parent_transient = true;
        } else if ((f.parent >> 24) == TPM2_HT_PERSISTENT) {
            check(Esys_TR_FromTPMPublic(ctx, f.parent, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &parent),
                  "the parent key 0x" + [&] {
                      char b[12];
                      std::snprintf(b, sizeof b, "%08x", f.parent);
                      return std::string(b);
                  }() + " named by the key file is not in this TPM");
            AuthValue pa(spec.parent_auth, "GnuTLSSRKPIN");
            check(Esys_TR_SetAuth(ctx, parent, pa.get()), "cannot set the parent authorization");
        } else {
            char b[12];
            std::snprintf(b, sizeof b, "%08x", f.parent);
            throw Error(spec.reference + ": unsupported parent handle 0x" + b +
                        " (expected the owner hierarchy 0x40000001 or a persistent key 0x81......)");
        }
        TSS2_RC rc = Esys_Load(ctx, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &handle_);
        if (parent_transient)
            Esys_FlushContext(ctx, parent);
        else
            Esys_TR_Close(ctx, &parent);
        if (rc != TSS2_RC_SUCCESS) {
            TSS2_RC base = rc & ~TPM2_RC_N_MASK;
            if (base == TPM2_RC_BAD_AUTH || base == TPM2_RC_AUTH_FAIL)
                throw TpmError("the TPM refused the parent's authorization (GnuTLSSRKPIN)", rc);
            if (rc == TPM2_RC_OBJECT_MEMORY)
                throw TpmError("the TPM has no free object slot to load the key", rc);
            throw TpmError("the TPM cannot load the key (was it made on another TPM, or under another parent?)",
                           rc);
        }
        transient_ = true;
        public_ = pub.publicArea;
        // emptyAuth: a configured PIN is ignored, as other TSS2 readers do.
        const Secret none;
        AuthValue ka(f.empty_auth.value_or(false) ? none : spec.auth, "GnuTLSPIN");
        check(Esys_TR_SetAuth(ctx, handle_, ka.get()), "cannot set the key authorization");
    } else {
        check(Esys_TR_FromTPMPublic(ctx, spec.persistent, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &handle_),
              "no key at persistent handle " + spec.reference.substr(spec.reference.find(':') + 1));
        TPM2B_PUBLIC* out = nullptr;
        TSS2_RC rc = Esys_ReadPublic(ctx, handle_, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &out, nullptr, nullptr);
        std::unique_ptr<TPM2B_PUBLIC, EsysFree<TPM2B_PUBLIC>> owned(out);
        if (rc != TSS2_RC_SUCCESS) {
            Esys_TR_Close(ctx, &handle_);
            throw TpmError("cannot read the public area of " + spec.reference, rc);
        }
        public_ = out->publicArea;
        AuthValue ka(spec.auth, "GnuTLSPIN");
        check(Esys_TR_SetAuth(ctx, handle_, ka.get()), "cannot set the key authorization");
    }
    if (public_.type != TPM2_ALG_RSA && public_.type != TPM2_ALG_ECC) {
        release();
        throw Error(spec.reference + ": the TPM key is neither RSA nor ECC");
    }
}

LoadedKey::~LoadedKey() { release(); }

void LoadedKey::forget() noexcept
{
    if (handle_ != ESYS_TR_NONE)
        Esys_TR_Close(tpm_.esys(), &handle_);
    handle_ = ESYS_TR_NONE;
}

void LoadedKey::release() noexcept
{
    if (handle_ == ESYS_TR_NONE)
        return;
    if (transient_)
        Esys_FlushContext(tpm_.esys(), handle_);
    else
        Esys_TR_Close(tpm_.esys(), &handle_);
    handle_ = ESYS_TR_NONE;
}

gnutls_pk_algorithm_t LoadedKey::algorithm() const
{
    return public_.type == TPM2_ALG_RSA ? GNUTLS_PK_RSA : GNUTLS_PK_ECDSA;
}

unsigned LoadedKey::bits() const
{
    if (public_.type == TPM2_ALG_RSA)
        return public_.parameters.rsaDetail.keyBits;
    switch (public_.parameters.eccDetail.curveID) {
    case TPM2_ECC_NIST_P256: return 256;
    case TPM2_ECC_NIST_P384: return 384;
    case TPM2_ECC_NIST_P521: return 521;
    default: return 0;
    }
}

gnutls_ecc_curve_t LoadedKey::curve() const
{
    if (public_.type != TPM2_ALG_ECC)
        return GNUTLS_ECC_CURVE_INVALID;
    switch (public_.parameters.eccDetail.curveID) {
    case TPM2_ECC_NIST_P256: return GNUTLS_ECC_CURVE_SECP256R1;
    case TPM2_ECC_NIST_P384: return GNUTLS_ECC_CURVE_SECP384R1;
    case TPM2_ECC_NIST_P521: return GNUTLS_ECC_CURVE_SECP521R1;
    default: return GNUTLS_ECC_CURVE_INVALID;
    }
}

PubKey LoadedKey::public_key() const
{
    PubKey pub = new_pubkey();
    int rc;
    if (public_.type == TPM2_ALG_RSA) {
        const auto& n = public_.unique.rsa;
        std::uint32_t e = public_.parameters.rsaDetail.exponent ? public_.parameters.rsaDetail.exponent : 65537;
        unsigned char eb[4] = {static_cast<unsigned char>(e >> 24), static_cast<unsigned char>(e >> 16),
                               static_cast<unsigned char>(e >> 8), static_cast<unsigned char>(e)};
        gnutls_datum_t m{const_cast<unsigned char*>(n.buffer), n.size};
        gnutls_datum_t ed{eb, 4};
        rc = gnutls_pubkey_import_rsa_raw(pub.get(), &m, &ed);
    } else {
        if (curve() == GNUTLS_ECC_CURVE_INVALID)
            throw Error("the TPM key is on a curve TLS cannot use");
        const auto& pt = public_.unique.ecc;
        gnutls_datum_t x{const_cast<unsigned char*>(pt.x.buffer), pt.x.size};
        gnutls_datum_t y{const_cast<unsigned char*>(pt.y.buffer), pt.y.size};
        rc = gnutls_pubkey_import_ecc_raw(pub.get(), curve(), &x, &y);
    }
    if (rc < 0)
        throw_gnutls("cannot read the TPM key's public half", rc);
    return pub;
}

bool LoadedKey::raw_rsa() const
{
    return public_.type == TPM2_ALG_RSA && (public_.objectAttributes & TPMA_OBJECT_DECRYPT) &&
           !(public_.objectAttributes & TPMA_OBJECT_RESTRICTED) &&
           public_.parameters.rsaDetail.scheme.scheme == TPM2_ALG_NULL;
}

bool LoadedKey::may_sign() const
{
    return (public_.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) && !(public_.objectAttributes & TPMA_OBJECT_RESTRICTED);
}

Bytes LoadedKey::rsa_raw(std::span<const std::uint8_t> block)
{
    TPM2B_PUBLIC_KEY_RSA in{};
    if (block.size() > sizeof in.buffer)
        throw Error("RSA block too large");
    in.size = static_cast<UINT16>(block.size());
    std::memcpy(in.buffer, block.data(), block.size());
    TPMT_RSA_DECRYPT scheme{};
    scheme.scheme = TPM2_ALG_NULL;
    TPM2B_DATA label{};
    TPM2B_PUBLIC_KEY_RSA* out = nullptr;
    check(Esys_RSA_Decrypt(tpm_.esys(), handle_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &in, &scheme, &label,
                           &out),
          "the TPM refused the RSA operation");
    std::unique_ptr<TPM2B_PUBLIC_KEY_RSA, EsysFree<TPM2B_PUBLIC_KEY_RSA>> owned(out);
    // The result is an integer: pad it back to the modulus size.
    Bytes sig(block.size() > out->size ? block.size() - out->size : 0, 0);
    sig.insert(sig.end(), out->buffer, out->buffer + out->size);
    return sig;
}

Bytes LoadedKey::sign_digest(TPM2_ALG_ID alg, gnutls_digest_algorithm_t hash, std::span<const std::uint8_t> digest)
{
    TPM2B_DIGEST d{};
    if (digest.size() > sizeof d.buffer)
        throw Error("digest too large for the TPM");
    d.size = static_cast<UINT16>(digest.size());
    std::memcpy(d.buffer, digest.data(), digest.size());
    TPMT_SIG_SCHEME scheme{};
    scheme.scheme = alg;
    scheme.details.any.hashAlg = tpm_hash_alg(hash);
    if (scheme.details.any.hashAlg == TPM2_ALG_ERROR)
        throw Error("the TPM has no hash algorithm for " + std::string(gnutls_digest_get_name(hash)));
    TPMT_TK_HASHCHECK validation{};
    validation.tag = TPM2_ST_HASHCHECK;
    validation.hierarchy = TPM2_RH_NULL;
    TPMT_SIGNATURE* sig = nullptr;
    check(Esys_Sign(tpm_.esys(), handle_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d, &scheme, &validation,
                    &sig),
          "the TPM refused to sign");
    std::unique_ptr<TPMT_SIGNATURE, EsysFree<TPMT_SIGNATURE>> owned(sig);
    if (alg == TPM2_ALG_ECDSA) {
        const auto& e = sig->signature.ecdsa;
        gnutls_datum_t r{const_cast<unsigned char*>(e.signatureR.buffer), e.signatureR.size};
        gnutls_datum_t s{const_cast<unsigned char*>(e.signatureS.buffer), e.signatureS.size};
        gnutls_datum_t der{};
        if (int rc = gnutls_encode_rs_value(&der, &r, &s); rc < 0)
            throw_gnutls("cannot encode the ECDSA signature", rc);
        Bytes out(der.data, der.data + der.size);
        gnutls_free(der.data);
        return out;
    }
    const auto& r = alg == TPM2_ALG_RSAPSS ? sig->signature.rsapss.sig : sig->signature.rsassa.sig;
    return Bytes(r.buffer, r.buffer + r.size);
}

} // namespace mgs::tpm

#include "tpm/key_creation.h"

#include "keystore/gnutls_handles.h"
#include "tpm/loaded_key.h"
#include "tpm/tpm_context.h"

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>

#include <cstring>
#include <memory>

namespace mgs::tpm {

namespace {

void check(TSS2_RC rc, const std::string& what)
{
    if (rc != TSS2_RC_SUCCESS)
        throw TpmError(what, rc);
}

bool auth_refused(TSS2_RC rc)
{
    TSS2_RC base = rc & ~TPM2_RC_N_MASK;
    return base == TPM2_RC_BAD_AUTH || base == TPM2_RC_AUTH_FAIL;
}

// The SRK template of tpm2-openssl, tpm2-tss-engine and GnuTLS (ECC P-256,
// AES-128-CFB, empty unique): the same SRK they derive, so the key file
// loads with any of them. loaded_key.cpp uses the same template to load.
TPM2B_PUBLIC ecc_srk_template()
{
    TPM2B_PUBLIC t{};
    TPMT_PUBLIC& p = t.publicArea;
    p.type = TPM2_ALG_ECC;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                         TPMA_OBJECT_NODA | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN;
    p.parameters.eccDetail.symmetric = {TPM2_ALG_AES, {128}, {TPM2_ALG_CFB}};
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    return t;
}

// A signing key that never leaves the TPM (fixedTPM, fixedParent, made by
// the TPM). Scheme NULL, so TLS picks the hash per signature; an RSA key
// may also decrypt, which lets the module pad PKCS#1 v1.5 and PSS (salt =
// hash length, as TLS 1.3 requires) itself over raw RSA (tls_signing.cpp).
TPM2B_PUBLIC key_template(NewKeyType type, bool with_auth)
{
    TPM2B_PUBLIC t{};
    TPMT_PUBLIC& p = t.publicArea;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_FIXEDTPM |
                         TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
    if (!with_auth)
        p.objectAttributes |= TPMA_OBJECT_NODA; // nothing to guess: no dictionary-attack lockout
    if (type.pk == GNUTLS_PK_RSA) {
        p.type = TPM2_ALG_RSA;
        p.objectAttributes |= TPMA_OBJECT_DECRYPT;
        p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        p.parameters.rsaDetail.keyBits = static_cast<TPMI_RSA_KEY_BITS>(type.bits);
        p.parameters.rsaDetail.exponent = 0;
    } else {
        p.type = TPM2_ALG_ECC;
        p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p.parameters.eccDetail.curveID = type.bits == 384 ? TPM2_ECC_NIST_P384 : TPM2_ECC_NIST_P256;
        p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    }
    return t;
}

// An authorization value is at most the name algorithm's digest long
// (SHA-256: 32 bytes), or TPM2_Create refuses it with TPM_RC_SIZE.
constexpr std::size_t max_auth = 32;

void check_auth_size(const Secret& s, const char* what)
{
    if (s.size() > max_auth)
        throw Error(std::string(what) + " is longer than a TPM key's authorization may be (" +
                    std::to_string(max_auth) + " bytes)");
}

// A stack copy of an authorization, wiped however the scope ends.
struct AuthCopy {
    TPM2B_AUTH value{};
    explicit AuthCopy(const Secret& s)
    {
        value.size = static_cast<UINT16>(s.size());
        std::memcpy(value.buffer, s.reveal(), s.size());
    }
    ~AuthCopy() { explicit_bzero(&value, sizeof value); }
    AuthCopy(const AuthCopy&) = delete;
    AuthCopy& operator=(const AuthCopy&) = delete;
};

// The SRK is flushed however the key's creation ends: a TPM without a
// resource manager (swtpm) has few object slots.
struct Flushed {
    ESYS_CONTEXT* ctx;
    ESYS_TR handle = ESYS_TR_NONE;
    ~Flushed()
    {
        if (handle != ESYS_TR_NONE)
            Esys_FlushContext(ctx, handle);
    }
};

// DER, as far as TPMKey needs it: definite lengths up to 64 KiB.
std::string der(unsigned char tag, const std::string& content)
{
    std::string out(1, static_cast<char>(tag));
    const std::size_t n = content.size();
    if (n < 0x80) {
        out += static_cast<char>(n);
    } else if (n < 0x100) {
        out += '\x81';
        out += static_cast<char>(n);
    } else {
        out += '\x82';
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xff);
    }
    return out + content;
}

std::string der_uint32(std::uint32_t v)
{
    std::string bytes;
    for (int shift = 24; shift >= 0; shift -= 8)
        bytes += static_cast<char>((v >> shift) & 0xff);
    while (bytes.size() > 1 && bytes[0] == '\0' && !(static_cast<unsigned char>(bytes[1]) & 0x80))
        bytes.erase(0, 1);
    if (static_cast<unsigned char>(bytes[0]) & 0x80)
        bytes.insert(0, 1, '\0');
    return der(0x02, bytes);
}

template <class T, TSS2_RC (*Marshal)(const T*, uint8_t*, size_t, size_t*)>
std::string marshal(const T& value, const char* what)
{
    std::string out(sizeof(T) + 16, '\0');
    std::size_t offset = 0;
    check(Marshal(&value, reinterpret_cast<uint8_t*>(out.data()), out.size(), &offset), what);
    out.resize(offset);
    return out;
}

template <class T>
struct EsysFreed {
    void operator()(T* p) const { Esys_Free(p); }
};

} // namespace

std::string tss2_key_pem(const std::string& public_area, const std::string& private_area, bool empty_auth,
                         std::uint32_t parent)
{
    // TPMKey ::= SEQUENCE { type OBJECT IDENTIFIER (2.23.133.10.1.3),
    //   emptyAuth [0] EXPLICIT BOOLEAN OPTIONAL, ..., parent INTEGER,
    //   pubkey OCTET STRING, privkey OCTET STRING }
    std::string body = der(0x06, std::string("\x67\x81\x05\x0a\x01\x03", 6));
    if (empty_auth)
        body += der(0xa0, der(0x01, std::string(1, '\xff')));
    body += der_uint32(parent) + der(0x04, public_area) + der(0x04, private_area);
    const std::string key = der(0x30, body);
    gnutls_datum_t in{reinterpret_cast<unsigned char*>(const_cast<char*>(key.data())),
                      static_cast<unsigned>(key.size())};
    GnutlsDatum pem;
    if (int rc = gnutls_pem_base64_encode2("TSS2 PRIVATE KEY", &in, &pem.d); rc < 0)
        throw Error(std::string("cannot write the TSS2 key file: ") + gnutls_strerror(rc));
    return {reinterpret_cast<const char*>(pem.d.data), pem.d.size};
}

std::string create_tss2_key(const std::string& tcti, NewKeyType type, const Secret& owner_auth,
                            const Secret& key_auth)
{
    check_auth_size(owner_auth, "the owner hierarchy authorization (--srk-pin)");
    check_auth_size(key_auth, "the key authorization (--pin)");
    TpmContext tpm(tcti);
    ESYS_CONTEXT* ctx = tpm.esys();
    {
        AuthCopy owner(owner_auth);
        check(Esys_TR_SetAuth(ctx, ESYS_TR_RH_OWNER, &owner.value), "cannot set the owner authorization");
    }

    TPM2B_SENSITIVE_CREATE none{};
    TPM2B_PUBLIC srk_tmpl = ecc_srk_template();
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    Flushed srk{ctx};
    TSS2_RC rc = Esys_CreatePrimary(ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &none,
                                    &srk_tmpl, &outside, &pcrs, &srk.handle, nullptr, nullptr, nullptr, nullptr);
    if (auth_refused(rc))
        throw TpmError("the TPM refused the owner hierarchy authorization (--srk-pin)", rc);
    check(rc, "cannot create the storage root key in the owner hierarchy");

    struct Sensitive {
        TPM2B_SENSITIVE_CREATE value{};
        ~Sensitive() { explicit_bzero(&value, sizeof value); }
    } sensitive;
    AuthCopy user(key_auth);
    sensitive.value.sensitive.userAuth = user.value;
    TPM2B_PUBLIC tmpl = key_template(type, !key_auth.empty());
    TPM2B_PRIVATE* priv_raw = nullptr;
    TPM2B_PUBLIC* pub_raw = nullptr;
    rc = Esys_Create(ctx, srk.handle, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive.value, &tmpl,
                     &outside, &pcrs, &priv_raw, &pub_raw, nullptr, nullptr, nullptr);
    std::unique_ptr<TPM2B_PRIVATE, EsysFreed<TPM2B_PRIVATE>> priv(priv_raw);
    std::unique_ptr<TPM2B_PUBLIC, EsysFreed<TPM2B_PUBLIC>> pub(pub_raw);
    check(rc, "the TPM cannot create the key (is the key type supported by this TPM?)");
    return tss2_key_pem(marshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Marshal>(*pub, "cannot encode the public part"),
                        marshal<TPM2B_PRIVATE, Tss2_MU_TPM2B_PRIVATE_Marshal>(*priv, "cannot encode the private part"),
                        key_auth.empty(), TPM2_RH_OWNER);
}

} // namespace mgs::tpm

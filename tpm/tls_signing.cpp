#include "tpm/tls_signing.h"

#include "tpm/rsa_padding.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include <algorithm>

namespace mgs::tpm {

namespace {

bool is_pss(gnutls_sign_algorithm_t s)
{
    switch (s) {
    case GNUTLS_SIGN_RSA_PSS_SHA256:
    case GNUTLS_SIGN_RSA_PSS_SHA384:
    case GNUTLS_SIGN_RSA_PSS_SHA512:
    case GNUTLS_SIGN_RSA_PSS_RSAE_SHA256:
    case GNUTLS_SIGN_RSA_PSS_RSAE_SHA384:
    case GNUTLS_SIGN_RSA_PSS_RSAE_SHA512:
        return true;
    default:
        return false;
    }
}

gnutls_digest_algorithm_t hash_by_size(std::size_t n)
{
    switch (n) {
    case 20: return GNUTLS_DIG_SHA1;
    case 32: return GNUTLS_DIG_SHA256;
    case 48: return GNUTLS_DIG_SHA384;
    case 64: return GNUTLS_DIG_SHA512;
    default: throw Error("no hash of " + std::to_string(n) + " bytes");
    }
}

// For keys without raw RSA: recover hash and digest from a DigestInfo.
std::pair<gnutls_digest_algorithm_t, Bytes> split_digest_info(std::span<const std::uint8_t> t)
{
    for (auto h : {GNUTLS_DIG_SHA256, GNUTLS_DIG_SHA384, GNUTLS_DIG_SHA512, GNUTLS_DIG_SHA1}) {
        std::size_t len = gnutls_hash_get_len(h);
        if (t.size() <= len)
            continue;
        Bytes zero(len, 0);
        Bytes prefix = digest_info(h, zero);
        prefix.resize(prefix.size() - len);
        if (t.size() == prefix.size() + len && std::equal(prefix.begin(), prefix.end(), t.begin()))
            return {h, Bytes(t.begin() + static_cast<std::ptrdiff_t>(prefix.size()), t.end())};
    }
    throw Error("this TPM key cannot make a raw RSA signature (no decrypt attribute), and the input is not a "
                "DigestInfo");
}

Bytes sign_rsa(LoadedKey& key, const SignRequest& req)
{
    const std::size_t k = (key.bits() + 7) / 8;
    if (req.scheme == GNUTLS_SIGN_RSA_RAW) {
        if (key.raw_rsa())
            return key.rsa_raw(pkcs1_v15_block(req.input, k));
        auto [h, digest] = split_digest_info(req.input);
        return key.sign_digest(TPM2_ALG_RSASSA, h, digest);
    }
    gnutls_digest_algorithm_t h = gnutls_sign_get_hash_algorithm(req.scheme);
    Bytes digest = req.kind == SignInput::message ? digest_of(h, req.input) : Bytes(req.input.begin(), req.input.end());
    if (is_pss(req.scheme))
        return key.raw_rsa() ? key.rsa_raw(pss_block(h, digest, key.bits()))
                             : key.sign_digest(TPM2_ALG_RSAPSS, h, digest);
    return key.raw_rsa() ? key.rsa_raw(pkcs1_v15_block(digest_info(h, digest), k))
                         : key.sign_digest(TPM2_ALG_RSASSA, h, digest);
}

Bytes sign_ecdsa(LoadedKey& key, const SignRequest& req)
{
    gnutls_digest_algorithm_t h = gnutls_sign_get_hash_algorithm(req.scheme);
    if (req.kind == SignInput::message)
        return key.sign_digest(TPM2_ALG_ECDSA, h, digest_of(h, req.input));
    if (h == GNUTLS_DIG_UNKNOWN || req.input.size() != gnutls_hash_get_len(h))
        h = hash_by_size(req.input.size());
    return key.sign_digest(TPM2_ALG_ECDSA, h, req.input);
}

// One PSS signature by the TPM itself, verified with TLS's rules.
bool tpm_pss_verifies(LoadedKey& key)
{
    try {
        Bytes digest(32, 0x5a);
        Bytes sig = key.sign_digest(TPM2_ALG_RSAPSS, GNUTLS_DIG_SHA256, digest);
        PubKey pub = key.public_key();
        gnutls_datum_t d{digest.data(), static_cast<unsigned>(digest.size())};
        gnutls_datum_t s{sig.data(), static_cast<unsigned>(sig.size())};
        return gnutls_pubkey_verify_hash2(pub.get(), GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, 0, &d, &s) >= 0;
    } catch (const TpmError& e) {
        if (is_link_failure(e.rc()))
            throw;
        return false;
    }
}

} // namespace

std::vector<gnutls_sign_algorithm_t> tls_schemes(LoadedKey& key)
{
    std::vector<gnutls_sign_algorithm_t> schemes = default_schemes(key.algorithm(), key.bits(), key.curve());
    if (key.algorithm() == GNUTLS_PK_RSA) {
        if (!key.raw_rsa() && !key.may_sign())
            throw Error("the TPM key may neither sign nor decrypt");
        if (!key.raw_rsa() && !tpm_pss_verifies(key))
            std::erase_if(schemes, is_pss);
    } else if (!key.may_sign()) {
        throw Error("the TPM key is not a signing key (no sign attribute, or restricted)");
    }
    // A key whose public area fixes a scheme and hash signs only with those.
    const TPMT_PUBLIC& p = key.public_area();
    TPMI_ALG_HASH fixed_hash = TPM2_ALG_NULL;
    if (p.type == TPM2_ALG_ECC && p.parameters.eccDetail.scheme.scheme != TPM2_ALG_NULL)
        fixed_hash = p.parameters.eccDetail.scheme.details.anySig.hashAlg;
    if (p.type == TPM2_ALG_RSA && p.parameters.rsaDetail.scheme.scheme != TPM2_ALG_NULL) {
        fixed_hash = p.parameters.rsaDetail.scheme.details.anySig.hashAlg;
        bool pss = p.parameters.rsaDetail.scheme.scheme == TPM2_ALG_RSAPSS;
        std::erase_if(schemes, [&](gnutls_sign_algorithm_t s) { return is_pss(s) != pss; });
    }
    if (fixed_hash != TPM2_ALG_NULL)
        std::erase_if(schemes, [&](gnutls_sign_algorithm_t s) {
            return tpm_hash_alg(gnutls_sign_get_hash_algorithm(s)) != fixed_hash;
        });
    if (schemes.empty())
        throw Error("the TPM key can make no signature TLS uses");
    return schemes;
}

Bytes sign_for_tls(LoadedKey& key, const SignRequest& req)
{
    return key.algorithm() == GNUTLS_PK_RSA ? sign_rsa(key, req) : sign_ecdsa(key, req);
}

} // namespace mgs::tpm

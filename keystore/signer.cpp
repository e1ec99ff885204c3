#include "keystore/signer.h"

namespace mgs {

std::vector<gnutls_sign_algorithm_t> default_schemes(gnutls_pk_algorithm_t pk, unsigned bits,
                                                     gnutls_ecc_curve_t curve)
{
    switch (pk) {
    case GNUTLS_PK_RSA: {
        std::vector<gnutls_sign_algorithm_t> s{
            GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, GNUTLS_SIGN_RSA_PSS_RSAE_SHA384,
            GNUTLS_SIGN_RSA_SHA256,          GNUTLS_SIGN_RSA_SHA384,
            GNUTLS_SIGN_RSA_SHA512,          GNUTLS_SIGN_RSA_SHA1,
        };
        // PSS with SHA-512 needs 2*64+2 bytes of modulus: fine from 1040 bits.
        if (bits >= 1040)
            s.insert(s.begin() + 2, GNUTLS_SIGN_RSA_PSS_RSAE_SHA512);
        return s;
    }
    case GNUTLS_PK_ECDSA: {
        // TLS 1.3 binds the curve to the hash; TLS 1.2 allows any pairing.
        std::vector<gnutls_sign_algorithm_t> s;
        if (curve == GNUTLS_ECC_CURVE_SECP256R1)
            s.push_back(GNUTLS_SIGN_ECDSA_SECP256R1_SHA256);
        else if (curve == GNUTLS_ECC_CURVE_SECP384R1)
            s.push_back(GNUTLS_SIGN_ECDSA_SECP384R1_SHA384);
        else if (curve == GNUTLS_ECC_CURVE_SECP521R1)
            s.push_back(GNUTLS_SIGN_ECDSA_SECP521R1_SHA512);
        for (auto a : {GNUTLS_SIGN_ECDSA_SHA256, GNUTLS_SIGN_ECDSA_SHA384, GNUTLS_SIGN_ECDSA_SHA512,
                       GNUTLS_SIGN_ECDSA_SHA1})
            s.push_back(a);
        return s;
    }
    case GNUTLS_PK_EDDSA_ED25519:
        return {GNUTLS_SIGN_EDDSA_ED25519};
    case GNUTLS_PK_EDDSA_ED448:
        return {GNUTLS_SIGN_EDDSA_ED448};
    default:
        return {};
    }
}

} // namespace mgs

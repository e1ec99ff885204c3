// RSA keys from files, signed by OpenSSL's libcrypto instead of GnuTLS.
//
// GnuTLS signs RSA through nettle's rsa_sec_compute_root, side-channel
// silent but about 4.7x slower than OpenSSL's RSA-2048 here (826 against
// 3,917 signatures/s on one core, docs/performance.md), and that is most of
// an RSA handshake's server CPU. OpenSSL's private-key operation keeps the
// same guarantees: base blinding on every operation, constant-time modular
// exponentiation (BN_FLG_CONSTTIME), and the CRT result checked against the
// public exponent before it leaves (a faulty CRT half would otherwise leak
// a factor). Every Apache host has libcrypto: mod_ssl is built on it.
//
// GnuTLS still does all of TLS; only the RSA signature is computed here,
// through the same Signer interface the hardware backends use.
#pragma once

#include "keystore/signer.h"

#include <memory>
#include <string>

namespace mgs {

// Who signs with an RSA key from a file (GnuTLSRSASigner).
enum class RsaEngine {
    automatic, // libcrypto when it loads the key and passes the self-test, else GnuTLS
    libcrypto, // libcrypto, or the key is refused
    gnutls,    // GnuTLS (nettle), as upstream mod_gnutls
};

// A signer on libcrypto for the RSA key in `key` (which stays the caller's).
// The key passes a sign-and-verify self-test (PKCS#1 v1.5 and PSS) against
// its GnuTLS public key before it is used. Throws mgs::Error, naming
// `source`, when libcrypto cannot take the key or the self-test fails.
std::shared_ptr<Signer> make_libcrypto_rsa_signer(gnutls_x509_privkey_t key, const std::string& source);

} // namespace mgs

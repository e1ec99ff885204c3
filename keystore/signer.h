// The Signer: one private key, wherever it lives (a file, a PKCS#11 token, a
// TPM). The TLS core only ever talks to this interface.
//
// As with BoringSSL's SSL_PRIVATE_KEY_METHOD, a signer states up front which
// TLS signature schemes it can produce and GnuTLS is never asked for another.
// Requests and results are plain bytes so that a signer can later live in a
// separate key-owning process behind a socket.
#pragma once

#include "keystore/bytes.h"
#include "keystore/gnutls_handles.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace mgs {

enum class SignInput {
    message, // the data to be signed; the signer hashes it if the scheme needs a hash
    digest,  // an already computed hash (or, for GNUTLS_SIGN_RSA_RAW, DigestInfo/MD5+SHA1)
};

struct SignRequest {
    gnutls_sign_algorithm_t scheme;
    SignInput kind;
    std::span<const std::uint8_t> input;
    unsigned gnutls_flags = 0; // GNUTLS_PRIVKEY_SIGN_FLAG_* as GnuTLS passed them
};

enum class SignerHealth { ok, unavailable };

class Signer {
public:
    virtual ~Signer() = default;

    // The key reference with any secret removed, for messages and status pages.
    virtual std::string describe() const = 0;
    // "file", "pkcs11", "tpm2".
    virtual std::string backend() const = 0;
    // Who computes the signatures: "gnutls" or "libcrypto" for keys in
    // files (GnuTLSRSASigner), the device for the others.
    virtual std::string engine() const { return backend(); }

    virtual gnutls_pk_algorithm_t algorithm() const = 0;
    virtual unsigned bits() const = 0;
    // The TLS signature schemes this key can produce, in preference order.
    virtual std::vector<gnutls_sign_algorithm_t> schemes() const = 0;
    // The public half, to check against the certificate.
    virtual PubKey public_key() const = 0;

    // Throws mgs::Error when the key cannot sign (token gone, ...).
    virtual Bytes sign(const SignRequest& request) = 0;

    // A key held in this process's memory can be handed to GnuTLS natively,
    // which avoids a callback per signature. Hardware keys return nullptr.
    virtual PrivKey native_privkey() const { return nullptr; }

    virtual SignerHealth health() const { return SignerHealth::ok; }
};

// The schemes GnuTLS can make with a software key of this algorithm and size,
// strongest hash first. Backends start from this list and drop what their
// hardware cannot do.
std::vector<gnutls_sign_algorithm_t> default_schemes(gnutls_pk_algorithm_t pk, unsigned bits,
                                                     gnutls_ecc_curve_t curve);

} // namespace mgs

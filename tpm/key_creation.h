// Making a new TPM 2.0 key: created inside the TPM under the owner
// hierarchy's storage root key (the standard ECC P-256 template every TSS2
// key writer derives, so tpm2-openssl and GnuTLS load the key too), and
// written as a "TSS2 PRIVATE KEY" file (draft-bottomley-tpm2-keys). The
// private part in the file is wrapped by the TPM: useless without it.
#pragma once

#include "keystore/secret.h"

#include <gnutls/gnutls.h>

#include <string>

namespace mgs::tpm {

struct NewKeyType {
    gnutls_pk_algorithm_t pk; // GNUTLS_PK_ECDSA or GNUTLS_PK_RSA
    unsigned bits;            // 256, 384 for ECDSA; 2048, 3072 for RSA
};

// The PEM of the new key file. `key_auth` becomes the key's authorization
// (GnuTLSPIN; empty: emptyAuth), `owner_auth` is the owner hierarchy's
// (GnuTLSSRKPIN). Throws TpmError / mgs::Error saying which step failed.
std::string create_tss2_key(const std::string& tcti, NewKeyType type, const Secret& owner_auth,
                            const Secret& key_auth);

// The DER of a TPMKey structure, for the parts create_tss2_key made (and
// the unit tests, which check that parse_tss2_key reads it back).
std::string tss2_key_pem(const std::string& public_area, const std::string& private_area, bool empty_auth,
                         std::uint32_t parent);

} // namespace mgs::tpm

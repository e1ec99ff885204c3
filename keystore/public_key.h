// Public keys as DER, the form signers keep and compare (a GnuTLS handle
// cannot cross a process boundary).
#pragma once

#include "keystore/bytes.h"
#include "keystore/gnutls_handles.h"

#include <string>

namespace mgs {

// DER encoding (SubjectPublicKeyInfo) of a public key, for comparing keys.
Bytes public_key_der(gnutls_pubkey_t key);
// And back; throws mgs::Error naming `what`.
PubKey public_key_from_der(const Bytes& der, const std::string& what);

} // namespace mgs

// Turns a Signer into the gnutls_privkey_t GnuTLS signs handshakes with:
// natively for keys in this process's memory, and through
// gnutls_privkey_import_ext4 callbacks for keys a backend holds elsewhere.
#pragma once

#include "keystore/signer.h"

#include <memory>

namespace mgs {

// The signer must outlive the returned key (ServerCredentials keeps both).
PrivKey bind_signer(Signer& signer);

// Why the last signature requested on this thread through a bound signer
// failed (GnuTLS only sees GNUTLS_E_PK_SIGN_FAILED); empty if it did not.
std::string take_last_sign_error();

} // namespace mgs

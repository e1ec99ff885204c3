// Certificates stored on a PKCS#11 token (GnuTLSCertificateFile pkcs11:...).
#pragma once

#include "keystore/gnutls_handles.h"

#include <string>
#include <vector>

namespace mgs::pkcs11 {

// The certificate the URL names, followed by its issuers when the token
// holds them too (end entity first). Throws mgs::Error naming the
// (redacted) URL.
std::vector<X509Crt> load_token_certificates(const std::string& url);

} // namespace mgs::pkcs11

// Certificates stored on a PKCS#11 token (GnuTLSCertificateFile pkcs11:...).
#pragma once

#include "src/certificate_chain.h"

namespace mgs::pkcs11 {

// The certificate the URL names, followed by its issuers when the token
// holds them too. Throws mgs::Error naming the (redacted) URL.
CertificateChain load_token_chain(const std::string& url);

} // namespace mgs::pkcs11

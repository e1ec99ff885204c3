// gnutls-keystore list: what GnuTLSKeyFile and GnuTLSCertificateFile could
// name: every PKCS#11 token the module would see and its objects as
// pkcs11: URLs (private keys too when a PIN is given), and with --tcti the
// TPM's persistent handles.
#pragma once

#include "tools/gnutls-keystore/options.h"

namespace mgs::tool {

int run_list(const Options& options);

} // namespace mgs::tool

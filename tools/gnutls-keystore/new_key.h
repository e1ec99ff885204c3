// gnutls-keystore new: a key generated inside a PKCS#11 token (never
// exportable), and a certificate signing request for it signed by the
// token, in one step.
#pragma once

#include "tools/gnutls-keystore/options.h"

namespace mgs::tool {

int run_new(const Options& options);

} // namespace mgs::tool

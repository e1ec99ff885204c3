// gnutls-keystore speed: signatures per second for a key, with one or more
// threads signing at once (a PKCS#11 key's session pool, the TPM's queue).
#pragma once

#include "tools/gnutls-keystore/options.h"

namespace mgs::tool {

int run_speed(const Options& options);

} // namespace mgs::tool

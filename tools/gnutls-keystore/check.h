// gnutls-keystore check: the key loads, signs every scheme it offers and
// the signatures verify; with --cert, the chain is in order and matches.
#pragma once

#include "tools/gnutls-keystore/options.h"

namespace mgs::tool {

// 0 when mod_gnutls would serve with this key (and chain), 1 otherwise.
int run_check(const Options& options);

} // namespace mgs::tool

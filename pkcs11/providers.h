// Which PKCS#11 modules GnuTLS (through p11-kit) loads: the ones named by
// GnuTLSPKCS11Module, or p11-kit's configured modules when none is named.
#pragma once

#include <string>
#include <vector>

namespace mgs::pkcs11 {

// Throws mgs::Error naming the module file and GnuTLS's reason. Safe to call
// again on every configuration reload: the previous set is unloaded first.
void load_providers(const std::vector<std::string>& modules);

} // namespace mgs::pkcs11

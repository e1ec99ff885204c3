// Which PKCS#11 modules GnuTLS (through p11-kit) loads: the ones named by
// GnuTLSPKCS11Module, or p11-kit's configured modules when none is named.
//
// A module whose device went away (a network HSM restarted, a token pulled)
// may never answer again until it is finalized and initialized anew; GnuTLS
// can only do that for all modules at once. So the modules are reloaded as
// a whole, at most once per second per process, and every key notices the
// new generation and reopens its sessions.
#pragma once

#include <shared_mutex>
#include <string>
#include <vector>

namespace mgs::pkcs11 {

// Throws mgs::Error naming the module file and GnuTLS's reason. Safe to call
// again on every configuration reload: the previous set is unloaded first.
void load_providers(const std::vector<std::string>& modules);

// Held shared while using any PKCS#11 object; reload takes it exclusively.
std::shared_mutex& provider_lock();
// Changes whenever the modules were reloaded in this process.
unsigned provider_generation();
// After a device failure: reload the modules unless that was tried in the
// last second. Must be called without provider_lock held.
void reload_providers_after_failure();

} // namespace mgs::pkcs11

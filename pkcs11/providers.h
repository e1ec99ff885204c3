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

// A configuration without PKCS#11 keys or modules.
void unload_providers();

// Apache's parent loads the modules to check every key at startup, then
// closes them before forking: module state (sessions, a network HSM's
// connection) never crosses a fork. Each child opens them anew.
void close_providers_before_fork();
void open_providers_in_child();

// Held shared while using any PKCS#11 object; reload takes it exclusively.
std::shared_mutex& provider_lock();
// Changes whenever the modules were reloaded in this process.
unsigned provider_generation();
// After a device failure seen while the modules were at seen_generation:
// reload them unless another thread already did (then just return) or a
// reload was tried in the last second. Must be called without
// provider_lock held.
void reload_providers_after_failure(unsigned seen_generation);

} // namespace mgs::pkcs11

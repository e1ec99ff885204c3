// Which PKCS#11 modules GnuTLS (through p11-kit) loads: the ones named by
// GnuTLSPKCS11Module, or p11-kit's configured modules when none is named.
//
// A module whose device went away (a network HSM restarted, a token pulled)
// may never answer again until it is finalized and initialized anew; GnuTLS
// can only do that for all modules at once. So the modules are reloaded as
// a whole, at most once per second per process, and every key notices the
// new generation and reopens its sessions.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

namespace mgs::pkcs11 {

// One configuration's PKCS#11 module set. GnuTLS keeps its modules for the
// whole process, so only one set is in use at a time: the current
// configuration's (httpd/module_state.h), whose keys hold a reference to it.
class ProviderSet {
public:
    ProviderSet() = default;
    ProviderSet(const ProviderSet&) = delete;
    ProviderSet& operator=(const ProviderSet&) = delete;

    // Throws mgs::Error naming the module file and GnuTLS's reason. Unloads
    // whatever GnuTLS had loaded before.
    void load(const std::vector<std::string>& modules);
    // The modules, remembered but not loaded: every token key is isolated
    // (GnuTLSKeyIsolation), so this process never loads a module; the
    // processes that do (a key check, the key agent) call open_in_child().
    void configure(const std::vector<std::string>& modules);
    // After configure(): loads the modules in a short-lived child process
    // and throws mgs::Error as load() would (a missing or broken module
    // fails the configuration, though this process never loads it).
    void check_in_child() const;
    // A configuration without PKCS#11 keys or modules.
    void unload();

    // Apache's parent loads the modules to check every key at startup, then
    // closes them before forking: module state (sessions, a network HSM's
    // connection) never crosses a fork. Each child opens them anew.
    void close_before_fork();
    void open_in_child();

    // The module files of this configuration (empty: p11-kit's own list).
    const std::vector<std::string>& modules() const { return modules_; }

    // Held shared while using any PKCS#11 object; reload takes it exclusively.
    std::shared_mutex& lock() { return lock_; }
    // Changes whenever the modules were reloaded in this process.
    unsigned generation() const { return generation_.load(); }
    // After a device failure seen while the modules were at seen_generation:
    // reload them unless another thread already did (then just return) or a
    // reload was tried in the last second. Must be called without lock() held.
    void reload_after_failure(unsigned seen_generation);

private:
    void init_locked(const std::vector<std::string>& modules);

    std::vector<std::string> modules_;
    bool configured_ = false; // load() or configure() ran for this configuration
    bool loaded_ = false;     // GnuTLS has the modules loaded in this process
    std::atomic<unsigned> generation_{0};
    std::atomic<std::int64_t> last_reload_ms_{0};
    std::shared_mutex lock_;
    std::mutex reloading_; // one reload at a time
};

} // namespace mgs::pkcs11

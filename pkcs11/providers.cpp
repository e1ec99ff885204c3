#include "pkcs11/providers.h"

#include "keystore/error.h"

#include <gnutls/pkcs11.h>

#include <atomic>
#include <chrono>
#include <mutex>

namespace mgs::pkcs11 {

namespace {

std::vector<std::string> configured_modules;
bool configured = false; // load_providers() ran for this configuration
std::atomic<unsigned> generation{0};
std::atomic<std::int64_t> last_reload_ms{0};

void init_locked(const std::vector<std::string>& modules)
{
    gnutls_pkcs11_deinit();
    generation.fetch_add(1);
    if (modules.empty()) {
        if (int rc = gnutls_pkcs11_init(GNUTLS_PKCS11_FLAG_AUTO, nullptr); rc < 0)
            throw_gnutls("cannot load p11-kit's configured PKCS#11 modules", rc);
        return;
    }
    if (int rc = gnutls_pkcs11_init(GNUTLS_PKCS11_FLAG_MANUAL, nullptr); rc < 0)
        throw_gnutls("cannot initialise PKCS#11", rc);
    for (const auto& m : modules)
        if (int rc = gnutls_pkcs11_add_provider(m.c_str(), nullptr); rc < 0)
            throw_gnutls("cannot load PKCS#11 module " + m, rc);
}

std::int64_t now_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

} // namespace

std::shared_mutex& provider_lock()
{
    static std::shared_mutex lock;
    return lock;
}

unsigned provider_generation() { return generation.load(); }

void load_providers(const std::vector<std::string>& modules)
{
    std::unique_lock lock(provider_lock());
    configured_modules = modules;
    configured = true;
    init_locked(modules);
}

void unload_providers()
{
    std::unique_lock lock(provider_lock());
    if (configured)
        gnutls_pkcs11_deinit();
    configured = false;
    configured_modules.clear();
    generation.fetch_add(1);
}

void close_providers_before_fork()
{
    std::unique_lock lock(provider_lock());
    if (!configured)
        return;
    gnutls_pkcs11_deinit();
    generation.fetch_add(1);
}

void open_providers_in_child()
{
    std::unique_lock lock(provider_lock());
    if (!configured)
        return;
    try {
        init_locked(configured_modules);
    } catch (const Error&) {
        // The parent loaded these modules a moment ago; if one fails now,
        // signing reports the outage and retries like any other.
    }
}

void reload_providers_after_failure(unsigned seen_generation)
{
    // One reload at a time; a thread that failed while another reloaded
    // waits for it and then retries on the fresh modules.
    static std::mutex reloading;
    std::lock_guard one_at_a_time(reloading);
    if (generation.load() != seen_generation)
        return;
    std::int64_t now = now_ms();
    if (now - last_reload_ms.load() < 1000)
        return; // reloaded a moment ago: the device is still away
    last_reload_ms = now;
    std::unique_lock lock(provider_lock());
    try {
        init_locked(configured_modules);
    } catch (const Error&) {
        // The device is still away; the next failure after a second retries.
    }
}

} // namespace mgs::pkcs11

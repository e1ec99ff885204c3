#include "pkcs11/providers.h"

#include "keystore/child_process.h"
#include "keystore/error.h"

#include <gnutls/pkcs11.h>

#include <chrono>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace mgs::pkcs11 {

namespace {

std::int64_t now_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

} // namespace

void ProviderSet::init_locked(const std::vector<std::string>& modules)
{
    gnutls_pkcs11_deinit(); // whatever GnuTLS had loaded (safe when nothing)
    loaded_ = false;
    generation_.fetch_add(1);
    if (modules.empty()) {
        if (int rc = gnutls_pkcs11_init(GNUTLS_PKCS11_FLAG_AUTO, nullptr); rc < 0)
            throw_gnutls("cannot load p11-kit's configured PKCS#11 modules", rc);
        loaded_ = true;
        return;
    }
    if (int rc = gnutls_pkcs11_init(GNUTLS_PKCS11_FLAG_MANUAL, nullptr); rc < 0)
        throw_gnutls("cannot initialise PKCS#11", rc);
    loaded_ = true;
    for (const auto& m : modules)
        if (int rc = gnutls_pkcs11_add_provider(m.c_str(), nullptr); rc < 0)
            throw_gnutls("cannot load PKCS#11 module " + m, rc);
}

void ProviderSet::load(const std::vector<std::string>& modules)
{
    std::unique_lock lock(lock_);
    modules_ = modules;
    configured_ = true;
    init_locked(modules);
}

void ProviderSet::configure(const std::vector<std::string>& modules)
{
    std::unique_lock lock(lock_);
    gnutls_pkcs11_deinit(); // whatever GnuTLS had loaded (safe when nothing)
    loaded_ = false;
    modules_ = modules;
    configured_ = true;
    generation_.fetch_add(1);
}

void ProviderSet::check_in_child() const
{
    ChildOutput child = run_child(
        "cannot start the PKCS#11 module check",
        [&](int fd) {
            std::string failure;
            try {
                const_cast<ProviderSet*>(this)->init_locked(modules_);
            } catch (const std::exception& e) {
                failure = e.what();
            }
            gnutls_pkcs11_deinit();
            std::size_t done = 0;
            while (done < failure.size()) {
                ssize_t n = ::write(fd, failure.data() + done, failure.size() - done);
                if (n <= 0)
                    break;
                done += static_cast<std::size_t>(n);
            }
            ::_exit(0);
        },
        64 * 1024);
    if (!child.output.empty())
        throw Error(std::string(child.output.begin(), child.output.end()));
    if (!WIFEXITED(child.status) || WEXITSTATUS(child.status) != 0)
        throw Error("the PKCS#11 module check " + describe_exit(child.status));
}

void ProviderSet::unload()
{
    std::unique_lock lock(lock_);
    if (loaded_)
        gnutls_pkcs11_deinit();
    loaded_ = false;
    configured_ = false;
    modules_.clear();
    generation_.fetch_add(1);
}

void ProviderSet::close_before_fork()
{
    std::unique_lock lock(lock_);
    if (!loaded_)
        return;
    gnutls_pkcs11_deinit();
    loaded_ = false;
    generation_.fetch_add(1);
}

void ProviderSet::open_in_child()
{
    std::unique_lock lock(lock_);
    if (!configured_)
        return;
    try {
        init_locked(modules_);
    } catch (const Error&) {
        // The parent loaded these modules a moment ago; if one fails now,
        // signing reports the outage and retries like any other.
    }
}

void ProviderSet::reload_after_failure(unsigned seen_generation)
{
    // One reload at a time; a thread that failed while another reloaded
    // waits for it and then retries on the fresh modules.
    std::lock_guard one_at_a_time(reloading_);
    if (generation_.load() != seen_generation)
        return;
    std::int64_t now = now_ms();
    if (now - last_reload_ms_.load() < 1000)
        return; // reloaded a moment ago: the device is still away
    last_reload_ms_ = now;
    std::unique_lock lock(lock_);
    try {
        init_locked(modules_);
    } catch (const Error&) {
        // The device is still away; the next failure after a second retries.
    }
}

} // namespace mgs::pkcs11

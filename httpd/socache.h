// One socache provider instance and the global mutex that serialises it
// when the provider is not MP-safe: what GnuTLSCache (TLS sessions, the
// proxy's back-end sessions) and GnuTLSOCSPCache (OCSP responses) are built
// on. Set up in the parent, inherited by the children.
#pragma once

#include "httpd/apache.h"
#include "keystore/bytes.h"

#include <ap_socache.h>
#include <apr_global_mutex.h>

#include <optional>
#include <span>
#include <string>

namespace mgs::httpd {

class Socache {
public:
    // `directive` names the cache in log lines (GnuTLSCache, GnuTLSOCSPCache).
    explicit Socache(const char* directive) : directive_(directive) {}
    // Its init registers a pool cleanup that points at it.
    Socache(const Socache&) = delete;
    Socache& operator=(const Socache&) = delete;

    // "provider[:parameters]" (mod_gnutls spelled memcached "memcache", as
    // the provider does). Returns an error message, or nullptr.
    const char* create(const std::string& spec, apr_pool_t* ptemp, apr_pool_t* pconf);
    // Back to no cache (GnuTLSCache none), before init.
    void reset();
    // After create: initialises the instance (destroyed with pconf) and,
    // for a provider that is not MP-safe, creates the `mutex_type` mutex
    // (registered in pre_config). Logs and returns the failure.
    apr_status_t init(const char* name, const ap_socache_hints& hints, const char* mutex_type, server_rec* base,
                      apr_pool_t* pconf);
    void child_init(apr_pool_t* p, server_rec* s);
    bool created() const { return provider_ != nullptr; } // create succeeded
    bool ready() const { return ready_; }           // and init too
    const char* provider_name() const { return provider_ ? provider_->name : "none"; }

    // Failures are not errors for the callers: an entry simply is not
    // there. `pool` is for the provider's temporary memory (a connection's);
    // nullptr: a pool for this operation alone.
    void store(server_rec* s, std::span<const std::uint8_t> key, apr_time_t expiry,
               std::span<const std::uint8_t> value, apr_pool_t* pool = nullptr) noexcept;
    std::optional<Bytes> retrieve(server_rec* s, std::span<const std::uint8_t> key, std::size_t max,
                                  apr_pool_t* pool = nullptr) noexcept;
    void remove(server_rec* s, std::span<const std::uint8_t> key, apr_pool_t* pool = nullptr) noexcept;
    // The provider's own lines for mod_status.
    void status(request_rec* r, int flags);

private:
    const char* directive_;
    const ap_socache_provider_t* provider_ = nullptr;
    ap_socache_instance_t* instance_ = nullptr;
    apr_global_mutex_t* mutex_ = nullptr;
    bool ready_ = false;
};

inline std::span<const std::uint8_t> as_bytes(std::string_view s)
{
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

} // namespace mgs::httpd

#include "httpd/session_cache.h"

#include "httpd/server_config.h"
#include "httpd/status_page.h"

#include <mod_status.h>

#include <ap_provider.h>
#include <apr_global_mutex.h>
#include <util_mutex.h>

#include <vector>

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

namespace {

constexpr const char* mutex_type = "gnutls-cache";
// GnuTLS's serialized sessions stay well below this (no client chains yet).
constexpr unsigned max_session_size = 16 * 1024;

// Set up by the directive (provider, instance) and post_config (mutex) in
// the parent; inherited by the children.
struct Cache {
    const ap_socache_provider_t* provider = nullptr;
    ap_socache_instance_t* instance = nullptr;
    apr_global_mutex_t* mutex = nullptr;
    bool initialised = false;
} cache;

class Lock {
public:
    Lock() : held_(cache.mutex && apr_global_mutex_lock(cache.mutex) == APR_SUCCESS) {}
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;
    ~Lock()
    {
        if (held_)
            apr_global_mutex_unlock(cache.mutex);
    }

private:
    bool held_;
};

} // namespace

const char* set_cache(cmd_parms* cmd, void*, const char* arg)
{
    if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY))
        return err;
    cache = Cache{};
    std::string spec(arg);
    if (spec == "none")
        return nullptr;
    std::string name = spec.substr(0, spec.find(':'));
    const char* params = spec.find(':') == std::string::npos ? nullptr
                                                              : apr_pstrdup(cmd->pool, spec.c_str() + name.size() + 1);
    // mod_gnutls spelled memcached "memcache"; providers use the same names.
    auto* provider = static_cast<const ap_socache_provider_t*>(
        ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name.c_str(), AP_SOCACHE_PROVIDER_VERSION));
    if (!provider)
        return apr_psprintf(cmd->pool,
                            "GnuTLSCache: no socache provider '%s'; load mod_socache_%s (available e.g.: shmcb, "
                            "dbm, memcache, redis) or use 'none'",
                            name.c_str(), name.c_str());
    ap_socache_instance_t* instance = nullptr;
    if (const char* err = provider->create(&instance, params, cmd->temp_pool, cmd->pool))
        return apr_psprintf(cmd->pool, "GnuTLSCache: %s", err);
    cache.provider = provider;
    cache.instance = instance;
    return nullptr;
}

bool cache_enabled() { return cache.initialised; }

void cache_status(request_rec* r, int flags)
{
    if (!cache.initialised) {
        ap_rputs(flags & AP_STATUS_SHORT ? "GnuTLSCache: none\n" : "<p>GnuTLSCache none</p>\n", r);
        return;
    }
    ap_rprintf(r, flags & AP_STATUS_SHORT ? "GnuTLSCache: %s\n" : "<p>GnuTLSCache %s</p>\n", cache.provider->name);
    // Upstream mod_gnutls's heading for the provider's own lines.
    ap_rputs(flags & AP_STATUS_SHORT ? "GnuTLS Session Cache:\n" : "<h3>GnuTLS Session Cache:</h3>\n", r);
    Lock lock; // as for every other use of a provider that is not MP-safe
    cache.provider->status(cache.instance, r, flags);
}

int cache_pre_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*)
{
    cache = Cache{};
    ap_mutex_register(pconf, mutex_type, nullptr, APR_LOCK_DEFAULT, 0);
    return OK;
}

int cache_post_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec* base)
{
    if (!cache.provider)
        return OK;
    if (cache.provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        if (apr_status_t rv = ap_global_mutex_create(&cache.mutex, nullptr, mutex_type, nullptr, base, pconf, 0);
            rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, base, "mod_gnutls: GnuTLSCache: cannot create the %s mutex",
                         mutex_type);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    struct ap_socache_hints hints {};
    hints.avg_id_len = 64;
    hints.avg_obj_size = 1500;
    hints.expiry_interval = 300;
    if (apr_status_t rv = cache.provider->init(cache.instance, "gnutls_cache", &hints, base, pconf);
        rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, base, "mod_gnutls: GnuTLSCache: cannot initialise the %s cache",
                     cache.provider->name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(
        pconf, base,
        [](void* s) -> apr_status_t {
            if (cache.provider && cache.instance)
                cache.provider->destroy(cache.instance, static_cast<server_rec*>(s));
            cache = Cache{};
            return APR_SUCCESS;
        },
        apr_pool_cleanup_null);
    cache.initialised = true;
    return OK;
}

void cache_child_init(apr_pool_t* p, server_rec* s)
{
    if (cache.mutex) {
        if (apr_status_t rv = apr_global_mutex_child_init(&cache.mutex, apr_global_mutex_lockfile(cache.mutex), p);
            rv != APR_SUCCESS)
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "mod_gnutls: GnuTLSCache: cannot attach to the %s mutex",
                         mutex_type);
    }
}

std::string ConnSessionStore::key(std::span<const std::uint8_t> id) const
{
    // The virtual host's session context (ServerName and identity, not
    // port, so servers of one pool share entries): a session never resumes
    // on another virtual host. The id first: shmcb picks its subcache by the
    // first bytes.
    std::string k(reinterpret_cast<const char*>(id.data()), id.size());
    k += ':';
    k += *context_;
    return k;
}

void ConnSessionStore::store(std::span<const std::uint8_t> id, std::span<const std::uint8_t> data) noexcept
{
    if (!cache.initialised || data.size() > max_session_size)
        return;
    try {
        std::string k = key(id);
        Lock lock;
        cache.provider->store(cache.instance, s_, reinterpret_cast<const unsigned char*>(k.data()),
                              static_cast<unsigned>(k.size()), apr_time_now() + apr_time_from_sec(ttl_.count()),
                              const_cast<unsigned char*>(data.data()), static_cast<unsigned>(data.size()),
                              c_->pool);
    } catch (...) {
    }
}

std::optional<Bytes> ConnSessionStore::retrieve(std::span<const std::uint8_t> id) noexcept
{
    if (!cache.initialised)
        return std::nullopt;
    try {
        std::string k = key(id);
        Bytes buf(max_session_size);
        unsigned len = max_session_size;
        apr_status_t rv;
        {
            Lock lock;
            rv = cache.provider->retrieve(cache.instance, s_, reinterpret_cast<const unsigned char*>(k.data()),
                                          static_cast<unsigned>(k.size()), buf.data(), &len, c_->pool);
        }
        if (rv != APR_SUCCESS)
            return std::nullopt;
        buf.resize(len);
        return buf;
    } catch (...) {
        return std::nullopt;
    }
}

void ConnSessionStore::remove(std::span<const std::uint8_t> id) noexcept
{
    if (!cache.initialised)
        return;
    try {
        std::string k = key(id);
        Lock lock;
        cache.provider->remove(cache.instance, s_, reinterpret_cast<const unsigned char*>(k.data()),
                               static_cast<unsigned>(k.size()), c_->pool);
    } catch (...) {
    }
}

} // namespace mgs::httpd

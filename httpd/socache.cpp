#include "httpd/socache.h"
#include "httpd/errors.h"

#include "httpd/global_lock.h"

#include <ap_provider.h>
#include <util_mutex.h>

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

namespace {

// The caller's pool, or one for this operation alone: GnuTLS callbacks and
// the watchdog have none at hand.
class OpPool {
public:
    explicit OpPool(apr_pool_t* given) : p_(given)
    {
        if (!p_) {
            apr_pool_create(&p_, nullptr);
            owned_ = true;
        }
    }
    ~OpPool()
    {
        if (owned_)
            apr_pool_destroy(p_);
    }
    OpPool(const OpPool&) = delete;
    OpPool& operator=(const OpPool&) = delete;
    apr_pool_t* get() const { return p_; }

private:
    apr_pool_t* p_ = nullptr;
    bool owned_ = false;
};

} // namespace

void Socache::reset()
{
    provider_ = nullptr;
    instance_ = nullptr;
    mutex_ = nullptr;
    ready_ = false;
}

const char* Socache::create(const std::string& spec, apr_pool_t* ptemp, apr_pool_t* pconf)
{
    reset();
    std::string name = spec.substr(0, spec.find(':'));
    const char* params = spec.find(':') == std::string::npos ? nullptr : apr_pstrdup(pconf, spec.c_str() + name.size() + 1);
    auto* provider = static_cast<const ap_socache_provider_t*>(
        ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name.c_str(), AP_SOCACHE_PROVIDER_VERSION));
    if (!provider)
        return apr_psprintf(pconf,
                            "no socache provider '%s'; load mod_socache_%s (available e.g.: shmcb, dbm, memcache, "
                            "redis) or use 'none'",
                            name.c_str(), name.c_str());
    ap_socache_instance_t* instance = nullptr;
    if (const char* err = provider->create(&instance, params, ptemp, pconf))
        return err;
    provider_ = provider;
    instance_ = instance;
    return nullptr;
}

apr_status_t Socache::init(const char* name, const ap_socache_hints& hints, const char* mutex_type, server_rec* base,
                           apr_pool_t* pconf)
{
    if (!provider_)
        return APR_EINIT;
    if (provider_->flags & AP_SOCACHE_FLAG_NOTMPSAFE)
        if (apr_status_t rv = ap_global_mutex_create(&mutex_, nullptr, mutex_type, nullptr, base, pconf, 0);
            rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, base, "mod_gnutls: " MGSLOGNO(01201) "%s: cannot create the %s mutex",
                         directive_, mutex_type);
            return rv;
        }
    ap_socache_hints h = hints;
    if (apr_status_t rv = provider_->init(instance_, name, &h, base, pconf); rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, base, "mod_gnutls: " MGSLOGNO(01202) "%s: cannot initialise the %s cache %s",
                     directive_, provider_->name, name);
        return rv;
    }
    struct Cleanup {
        Socache* cache;
        server_rec* s;
    };
    auto* c = static_cast<Cleanup*>(apr_palloc(pconf, sizeof(Cleanup)));
    *c = Cleanup{this, base};
    apr_pool_cleanup_register(
        pconf, c,
        [](void* data) -> apr_status_t {
            auto* c = static_cast<Cleanup*>(data);
            if (c->cache->provider_ && c->cache->instance_)
                c->cache->provider_->destroy(c->cache->instance_, c->s);
            c->cache->reset();
            return APR_SUCCESS;
        },
        apr_pool_cleanup_null);
    ready_ = true;
    return APR_SUCCESS;
}

void Socache::child_init(apr_pool_t* p, server_rec* s)
{
    if (mutex_)
        if (apr_status_t rv = apr_global_mutex_child_init(&mutex_, apr_global_mutex_lockfile(mutex_), p);
            rv != APR_SUCCESS)
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "mod_gnutls: " MGSLOGNO(01203) "%s: cannot attach to the cache's mutex",
                         directive_);
}

void Socache::store(server_rec* s, std::span<const std::uint8_t> key, apr_time_t expiry,
                    std::span<const std::uint8_t> value, apr_pool_t* p) noexcept
{
    if (!ready_)
        return;
    OpPool pool(p);
    GlobalLock lock(mutex_);
    provider_->store(instance_, s, key.data(), static_cast<unsigned>(key.size()), expiry,
                     const_cast<unsigned char*>(value.data()), static_cast<unsigned>(value.size()), pool.get());
}

std::optional<Bytes> Socache::retrieve(server_rec* s, std::span<const std::uint8_t> key, std::size_t max,
                                       apr_pool_t* p) noexcept
{
    if (!ready_)
        return std::nullopt;
    try {
        Bytes buf(max);
        unsigned len = static_cast<unsigned>(max);
        apr_status_t rv;
        {
            OpPool pool(p);
            GlobalLock lock(mutex_);
            rv = provider_->retrieve(instance_, s, key.data(), static_cast<unsigned>(key.size()), buf.data(), &len,
                                     pool.get());
        }
        if (rv != APR_SUCCESS)
            return std::nullopt;
        buf.resize(len);
        return buf;
    } catch (...) {
        return std::nullopt;
    }
}

void Socache::remove(server_rec* s, std::span<const std::uint8_t> key, apr_pool_t* p) noexcept
{
    if (!ready_)
        return;
    OpPool pool(p);
    GlobalLock lock(mutex_);
    provider_->remove(instance_, s, key.data(), static_cast<unsigned>(key.size()), pool.get());
}

void Socache::status(request_rec* r, int flags)
{
    if (!ready_)
        return;
    GlobalLock lock(mutex_);
    provider_->status(instance_, r, flags);
}

} // namespace mgs::httpd

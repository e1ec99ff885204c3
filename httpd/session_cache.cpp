#include "httpd/session_cache.h"

#include "httpd/module_state.h"
#include "httpd/server_config.h"
#include "httpd/socache.h"
#include "httpd/status_page.h"

#include <mod_status.h>

#include <util_mutex.h>

#include <vector>

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

namespace {

constexpr const char* mutex_type = "gnutls-cache";
// GnuTLS's serialized sessions stay well below this (client sessions carry
// the server's chain).
constexpr unsigned max_session_size = 16 * 1024;

} // namespace

const char* set_cache(cmd_parms* cmd, void*, const char* arg)
{
    if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY))
        return err;
    Socache& cache = module_state(cmd->server).session_cache;
    cache.reset();
    std::string spec(arg);
    if (spec == "none")
        return nullptr;
    if (const char* err = cache.create(spec, cmd->temp_pool, cmd->pool))
        return apr_psprintf(cmd->pool, "GnuTLSCache: %s", err);
    return nullptr;
}

bool cache_enabled(const server_rec* s) { return module_state(s).session_cache.ready(); }

void cache_status(request_rec* r, int flags)
{
    Socache& cache = module_state(r->server).session_cache;
    if (!cache.ready()) {
        ap_rputs(flags & AP_STATUS_SHORT ? "GnuTLSCache: none\n" : "<p>GnuTLSCache none</p>\n", r);
        return;
    }
    ap_rprintf(r, flags & AP_STATUS_SHORT ? "GnuTLSCache: %s\n" : "<p>GnuTLSCache %s</p>\n", cache.provider_name());
    // Upstream mod_gnutls's heading for the provider's own lines.
    ap_rputs(flags & AP_STATUS_SHORT ? "GnuTLS Session Cache:\n" : "<h3>GnuTLS Session Cache:</h3>\n", r);
    cache.status(r, flags);
}

int cache_pre_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*)
{
    ap_mutex_register(pconf, mutex_type, nullptr, APR_LOCK_DEFAULT, 0);
    return OK;
}

int cache_post_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec* base)
{
    Socache& cache = module_state(base).session_cache;
    if (!cache.created())
        return OK; // GnuTLSCache none
    ap_socache_hints hints{};
    hints.avg_id_len = 64;
    hints.avg_obj_size = 1500;
    hints.expiry_interval = defaults::cache_timeout;
    return cache.init("gnutls_cache", hints, mutex_type, base, pconf) == APR_SUCCESS ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

void cache_child_init(apr_pool_t* p, server_rec* s) { module_state(s).session_cache.child_init(p, s); }

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
    if (data.size() > max_session_size)
        return;
    try {
        module_state(s_).session_cache.store(s_, as_bytes(key(id)), apr_time_now() + apr_time_from_sec(ttl_.count()), data, c_->pool);
    } catch (...) {
    }
}

std::optional<Bytes> ConnSessionStore::retrieve(std::span<const std::uint8_t> id) noexcept
{
    try {
        return module_state(s_).session_cache.retrieve(s_, as_bytes(key(id)), max_session_size, c_->pool);
    } catch (...) {
        return std::nullopt;
    }
}

void ConnSessionStore::remove(std::span<const std::uint8_t> id) noexcept
{
    try {
        module_state(s_).session_cache.remove(s_, as_bytes(key(id)), c_->pool);
    } catch (...) {
    }
}

} // namespace mgs::httpd

// GnuTLSCache: TLS 1.2 sessions in any socache provider (shmcb, dbm,
// memcache, redis, ...), shared by all processes (and, with memcache or
// redis, by a pool of servers). Providers that are not MP-safe are
// serialised with the "gnutls-cache" global mutex.
#pragma once

#include "httpd/apache.h"
#include "src/session_cache.h"

#include <ap_socache.h>
#include <chrono>
#include <string>

namespace mgs::httpd {

// Directive handler for GnuTLSCache (server config only).
const char* set_cache(cmd_parms* cmd, void*, const char* arg);

int cache_pre_config(apr_pool_t* pconf, apr_pool_t* plog, apr_pool_t* ptemp);
int cache_post_config(apr_pool_t* pconf, apr_pool_t* plog, apr_pool_t* ptemp, server_rec* base);
void cache_child_init(apr_pool_t* p, server_rec* s);
bool cache_enabled(const server_rec* s);

// The cache as one connection sees it: temporary memory from the
// connection's pool, entries keyed by the virtual host's session context
// (VhostTls::session_context, which outlives the connection), so a session
// resumes only on the virtual host that made it.
class ConnSessionStore final : public SessionStore {
public:
    ConnSessionStore(conn_rec* c, server_rec* s, const std::string& context, std::chrono::seconds ttl)
        : c_(c), s_(s), context_(&context), ttl_(ttl) {}
    void retarget(server_rec* s, const std::string& context, std::chrono::seconds ttl)
    {
        s_ = s;
        context_ = &context;
        ttl_ = ttl;
    }
    void store(std::span<const std::uint8_t> id, std::span<const std::uint8_t> data) noexcept override;
    std::optional<Bytes> retrieve(std::span<const std::uint8_t> id) noexcept override;
    void remove(std::span<const std::uint8_t> id) noexcept override;

private:
    std::string key(std::span<const std::uint8_t> id) const;
    conn_rec* c_;
    server_rec* s_;
    const std::string* context_;
    std::chrono::seconds ttl_;
};

} // namespace mgs::httpd

#include "httpd/ocsp_stapling.h"

#include "httpd/errors.h"
#include "httpd/global_lock.h"
#include "httpd/module_state.h"
#include "httpd/ocsp_fetch.h"
#include "httpd/socache.h"
#include "keystore/error.h"
#include "keystore/hex.h"
#include "src/ocsp_client.h"

#include <ap_provider.h>
#include <http_main.h>
#include <mod_watchdog.h>
#include <util_mutex.h>

#include <gnutls/crypto.h>

#include <cstring>
#include <random>
#include <vector>

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

struct OcspStapler {
    server_rec* s = nullptr;
    std::string label;
    Bytes cert_der, issuer_der;
    std::string uri;
    std::string cache_key;
    bool nonce = false;
    bool auto_refresh = true;
    int cache_timeout = defaults::ocsp_cache_timeout, failure_timeout = defaults::ocsp_failure_timeout, fuzz_time = 0,
        socket_timeout = defaults::ocsp_socket_timeout;
    std::string instance;                       // this certificate's mutex instance
    apr_global_mutex_t* fetch_mutex = nullptr;  // one fetch of this certificate at a time
    bool in_background = false;                 // registered with mod_watchdog
};

namespace {


constexpr const char* fetch_mutex_type = "gnutls-ocsp";
constexpr const char* cache_mutex_type = "gnutls-ocsp-cache";
constexpr unsigned max_entry = 16 * 1024;

OcspState& state_of(const OcspStapler& st) { return module_state(st.s).ocsp; }

// A cache entry: 'R' + response, or 'F' (a fetch failed: do not try again
// before the entry expires), each with its expiry in seconds since the epoch.
struct Entry {
    char kind = 0;
    std::int64_t expires = 0;
    Bytes der;
};

std::optional<Entry> load(const OcspStapler& st)
{
    auto value = state_of(st).cache.retrieve(st.s, as_bytes(st.cache_key), max_entry);
    if (!value || value->size() < 9)
        return std::nullopt;
    Entry e;
    e.kind = static_cast<char>((*value)[0]);
    std::memcpy(&e.expires, value->data() + 1, 8);
    if (e.expires <= static_cast<std::int64_t>(::time(nullptr)))
        return std::nullopt;
    e.der.assign(value->begin() + 9, value->end());
    return e;
}

void save(const OcspStapler& st, char kind, std::int64_t expires, const Bytes& der)
{
    if (der.size() + 9 > max_entry)
        return;
    Bytes value(9);
    value[0] = static_cast<unsigned char>(kind);
    std::memcpy(value.data() + 1, &expires, 8);
    value.insert(value.end(), der.begin(), der.end());
    state_of(st).cache.store(st.s, as_bytes(st.cache_key), apr_time_from_sec(expires), value);
}

X509Crt import_der(const Bytes& der)
{
    X509Crt c = new_x509_crt();
    gnutls_datum_t d{const_cast<unsigned char*>(der.data()), static_cast<unsigned>(der.size())};
    if (int rc = gnutls_x509_crt_import(c.get(), &d, GNUTLS_X509_FMT_DER); rc < 0)
        throw_gnutls("certificate", rc);
    return c;
}

// Fetches a response now and caches it (or the failure). Returns the
// response's remaining lifetime in seconds, or -1 after a failure.
std::int64_t fetch(OcspStapler& st)
{
    const std::int64_t now = ::time(nullptr);
    try {
        X509Crt cert = import_der(st.cert_der);
        X509Crt issuer = import_der(st.issuer_der);
        OcspRequest req = make_ocsp_request(cert.get(), issuer.get(), st.nonce);
        // One deadline for all of it: resolving, connecting, sending, reading.
        Bytes reply = post_ocsp_request(st.uri, req.der,
                                        std::chrono::steady_clock::now() + std::chrono::seconds(st.socket_timeout),
                                        nullptr);
        CheckedOcspResponse ok = check_ocsp_response(reply, cert.get(), issuer.get(), req.nonce);
        std::int64_t expires = now + st.cache_timeout;
        if (ok.next_update != std::chrono::system_clock::time_point::max())
            expires = std::min<std::int64_t>(expires, std::chrono::system_clock::to_time_t(ok.next_update));
        save(st, 'R', expires, ok.der);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, st.s, "mod_gnutls: %s: OCSP response from %s cached for %s s",
                     st.label.c_str(), st.uri.c_str(), std::to_string(expires - now).c_str());
        return expires - now;
    } catch (const std::exception& e) {
        save(st, 'F', now + st.failure_timeout, {});
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, st.s,
                     "mod_gnutls: " MGSLOGNO(01101) "%s: no OCSP response to staple: %s (next try in %d s, GnuTLSOCSPFailureTimeout)",
                     st.label.c_str(), e.what(), st.failure_timeout);
        return -1;
    }
}

// The watchdog's mark that it refreshes this certificate: while it is in
// the cache (renewed at every refresh, and outliving the next one), a
// handshake never fetches. If the watchdog stops, the mark expires and
// handshakes fetch again.
std::string watchdog_key(const OcspStapler& st) { return "wd:" + st.cache_key; }

void mark_refreshed(const OcspStapler& st, apr_interval_time_t next)
{
    std::int64_t expires = ::time(nullptr) + apr_time_sec(next) + st.socket_timeout + 60;
    Bytes value{'W'};
    state_of(st).cache.store(st.s, as_bytes(watchdog_key(st)), apr_time_from_sec(expires), value);
}

bool refreshed_in_background(const OcspStapler& st)
{
    return st.in_background && state_of(st).cache.retrieve(st.s, as_bytes(watchdog_key(st)), 16).has_value();
}

// How long a handshake that finds no response waits for a fetch another
// process (or the watchdog's first refresh, at startup) has under way, as
// upstream mod_gnutls waits for it: a responder answers well within this,
// and a silent one stalls no handshake longer (its fetcher has the whole
// GnuTLSOCSPSocketTimeout).
constexpr apr_interval_time_t wait_for_other_fetch = apr_time_from_msec(500);

// At each handshake: the cached response; or, when nothing refreshes it in
// the background, one fetched now (by this handshake, or by the process
// that already fetches it, if it finishes within wait_for_other_fetch).
int staple(gnutls_session_t, void* data, gnutls_datum_t* out) noexcept
{
    try {
        auto* st = static_cast<OcspStapler*>(data);
        std::optional<Entry> e = load(*st);
        if (!e && !refreshed_in_background(*st)) {
            GlobalLock one_fetch(st->fetch_mutex, GlobalLock::Within{wait_for_other_fetch});
            if (one_fetch.held() || !st->fetch_mutex) {
                e = load(*st); // another process may have fetched meanwhile
                if (!e) {
                    fetch(*st);
                    e = load(*st);
                }
            }
        }
        if (!e || e->kind != 'R')
            return GNUTLS_E_NO_CERTIFICATE_STATUS;
        out->data = static_cast<unsigned char*>(gnutls_malloc(e->der.size()));
        if (!out->data)
            return GNUTLS_E_MEMORY_ERROR;
        std::memcpy(out->data, e->der.data(), e->der.size());
        out->size = static_cast<unsigned>(e->der.size());
        return 0;
    } catch (...) {
        return GNUTLS_E_NO_CERTIFICATE_STATUS;
    }
}

// mod_gnutls's schedule: after a success, between FuzzTime and FuzzTime/2
// before CacheTimeout ends, halved until it falls within the response's
// lifetime; after a failure, FailureTimeout.
apr_interval_time_t next_refresh(const OcspStapler& st, std::int64_t lifetime)
{
    if (lifetime < 0)
        return apr_time_from_sec(std::max(st.failure_timeout, 1));
    static thread_local std::mt19937 rng{std::random_device{}()};
    double fuzz = std::uniform_real_distribution<double>(st.fuzz_time / 2.0, st.fuzz_time)(rng);
    double seconds = std::max(1.0, st.cache_timeout - fuzz);
    while (seconds >= static_cast<double>(lifetime) && seconds > 1.0)
        seconds /= 2;
    return static_cast<apr_interval_time_t>(seconds * APR_USEC_PER_SEC);
}

apr_status_t refresh_in_background(int wd_state, void* data, apr_pool_t*)
{
    auto* st = static_cast<OcspStapler*>(data);
    if (wd_state == AP_WATCHDOG_STATE_STOPPING)
        return APR_SUCCESS;
    try { // a C callback: nothing may escape
        std::int64_t lifetime;
        {
            GlobalLock one_fetch(st->fetch_mutex);
            lifetime = fetch(*st);
        }
        apr_interval_time_t next = next_refresh(*st, lifetime);
        mark_refreshed(*st, next);
        OcspState& state = state_of(*st);
        if (state.set_interval)
            state.set_interval(state.watchdog, next, st, refresh_in_background);
    } catch (...) {
    }
    return APR_SUCCESS;
}

bool cache_possible(const ServerConfig& global, std::string& why)
{
    std::string spec = global.ocsp_cache.value_or(defaults::ocsp_cache);
    if (spec == "none") {
        why = "GnuTLSOCSPCache is none";
        return false;
    }
    std::string name = spec.substr(0, spec.find(':'));
    if (!ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name.c_str(), AP_SOCACHE_PROVIDER_VERSION)) {
        why = "no cache for OCSP responses: load mod_socache_" + name + " or set GnuTLSOCSPCache";
        return false;
    }
    return true;
}

} // namespace

std::shared_ptr<OcspStapler> make_ocsp_stapler(server_rec* s, const ServerConfig& sc, ServerCredentials& creds,
                                               bool required)
{
    auto unmet = [&](const std::string& why) -> std::shared_ptr<OcspStapler> {
        if (required)
            throw Error("OCSP stapling is on but " + why);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "mod_gnutls: %s: no OCSP stapling: %s",
                     server_label(s).c_str(), why.c_str());
        return nullptr;
    };
    const CertificateChain& chain = creds.chain();
    std::string uri = ocsp_responder_uri(chain.leaf());
    if (uri.empty())
        return unmet("the certificate names no http:// OCSP responder (Authority Information Access); use "
                     "GnuTLSOCSPResponseFile");
    gnutls_x509_crt_t issuer = nullptr;
    for (std::size_t i = 1; i < chain.size(); ++i)
        if (gnutls_x509_crt_check_issuer(chain.leaf(), chain.at(i))) {
            issuer = chain.at(i);
            break;
        }
    if (!issuer)
        return unmet("the issuer of the certificate is not in GnuTLSCertificateFile (OCSP responses are checked "
                     "against it): add the CA certificates to the chain file");
    std::string why;
    if (!cache_possible(*server_config(ap_server_conf), why))
        return unmet(why);

    auto st = std::make_shared<OcspStapler>();
    st->s = s;
    st->label = server_label(s);
    st->cert_der = certificate_der(chain.leaf());
    st->issuer_der = certificate_der(issuer);
    st->uri = uri;
    st->nonce = sc.ocsp_check_nonce.value_or(false);
    st->auto_refresh = sc.ocsp_auto_refresh.value_or(true);
    st->cache_timeout = sc.ocsp_cache_timeout.value_or(defaults::ocsp_cache_timeout);
    st->failure_timeout = sc.ocsp_failure_timeout.value_or(defaults::ocsp_failure_timeout);
    st->fuzz_time = sc.ocsp_fuzz_time.value_or(std::max(st->cache_timeout / 8, st->failure_timeout * 2));
    st->socket_timeout = sc.ocsp_socket_timeout.value_or(defaults::ocsp_socket_timeout);
    unsigned char digest[32];
    gnutls_hash_fast(GNUTLS_DIG_SHA256, st->cert_der.data(), st->cert_der.size(), digest);
    st->cache_key = "ocsp:" + hex(digest);
    creds.staple_ocsp_from(staple, st.get());
    module_state(s).ocsp.staplers.push_back(st);
    return st;
}

int ocsp_pre_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*)
{
    ap_mutex_register(pconf, fetch_mutex_type, nullptr, APR_LOCK_DEFAULT, 0);
    ap_mutex_register(pconf, cache_mutex_type, nullptr, APR_LOCK_DEFAULT, 0);
    return OK;
}

int ocsp_post_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t* ptemp, server_rec* base)
{
    OcspState& state = module_state(base).ocsp;
    if (state.staplers.empty())
        return OK;
    if (const char* err =
            state.cache.create(server_config(base)->ocsp_cache.value_or(defaults::ocsp_cache), ptemp, pconf)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, base, "mod_gnutls: " MGSLOGNO(01102) "GnuTLSOCSPCache: %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_socache_hints hints{};
    hints.avg_id_len = 69;
    hints.avg_obj_size = 2048;
    hints.expiry_interval = defaults::ocsp_cache_timeout;
    if (state.cache.init("gnutls_ocsp", hints, cache_mutex_type, base, pconf) != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;
    for (std::size_t i = 0; i < state.staplers.size(); ++i) {
        OcspStapler& st = *state.staplers[i];
        st.instance = "cert" + std::to_string(i);
        if (apr_status_t rv = ap_global_mutex_create(&st.fetch_mutex, nullptr, fetch_mutex_type, st.instance.c_str(),
                                                     base, pconf, 0);
            rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, base, "mod_gnutls: " MGSLOGNO(01103) "cannot create the %s mutex",
                         fetch_mutex_type);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    // Background refresh: one mod_watchdog thread in one child for all.
    auto get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    auto register_cb = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    state.set_interval = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_set_callback_interval);
    bool any_refresh = false;
    for (auto& st : state.staplers)
        any_refresh |= st->auto_refresh;
    if (!any_refresh)
        return OK;
    if (!get_instance || !register_cb || !state.set_interval ||
        get_instance(&state.watchdog, "_mod_gnutls_ocsp_", 0, 1, pconf) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, base,
                     "mod_gnutls: mod_watchdog is not available: OCSP responses are fetched during handshakes "
                     "instead of in the background (GnuTLSOCSPAutoRefresh)");
        return OK;
    }
    // The first refresh at the watchdog's first tick (it ticks every 100 ms).
    for (auto& st : state.staplers)
        if (st->auto_refresh && register_cb(state.watchdog, 0, st.get(), refresh_in_background) == APR_SUCCESS)
            st->in_background = true;
    return OK;
}

void ocsp_child_init(apr_pool_t* p, server_rec* s)
{
    OcspState& state = module_state(s).ocsp;
    state.cache.child_init(p, s);
    for (auto& st : state.staplers)
        if (st->fetch_mutex)
            if (apr_status_t rv = apr_global_mutex_child_init(&st->fetch_mutex, apr_global_mutex_lockfile(st->fetch_mutex), p);
                rv != APR_SUCCESS)
                ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "mod_gnutls: " MGSLOGNO(01104) "cannot attach to the %s mutex",
                             fetch_mutex_type);
}

} // namespace mgs::httpd

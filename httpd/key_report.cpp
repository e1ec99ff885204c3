#include "httpd/key_report.h"

#include "httpd/errors.h"
#include "httpd/server_config.h"
#include "src/server_credentials.h"

#include <gnutls/x509.h>

#include <ctime>
#include <string>

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

namespace {

std::string key_text(const Signer& key)
{
    std::string text = key.describe() + " (" + key.backend() + ", " +
                       (gnutls_pk_get_name(key.algorithm()) ? gnutls_pk_get_name(key.algorithm()) : "?") + " " +
                       std::to_string(key.bits()) + " bits, signed by " + key.engine() + "; schemes";
    for (auto scheme : key.schemes())
        text += std::string(" ") + (gnutls_sign_get_name(scheme) ? gnutls_sign_get_name(scheme) : "?");
    return text + ")";
}

std::string date_text(std::time_t t)
{
    char buf[32];
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}

// The chain's problems: order (each certificate issued by the next) and
// expiry; empty when there are none. `expired` is set for an expired one.
std::string chain_problems(const CertificateChain& chain, bool& expired)
{
    std::string out;
    const std::time_t now = std::time(nullptr);
    for (std::size_t i = 0; i < chain.size(); ++i) {
        const std::time_t until = gnutls_x509_crt_get_expiration_time(chain.at(i));
        if (until == static_cast<std::time_t>(-1)) {
            out += "; certificate " + std::to_string(i + 1) + " has no readable end of validity";
        } else if (until < now) {
            expired = true;
            out += "; certificate " + std::to_string(i + 1) + " expired on " + date_text(until);
        } else if (until - now < 14 * 86400) {
            out += "; certificate " + std::to_string(i + 1) + " expires within 14 days (" + date_text(until) + ")";
        }
        if (i + 1 < chain.size() && !gnutls_x509_crt_check_issuer(chain.at(i), chain.at(i + 1)))
            out += "; certificate " + std::to_string(i + 2) + " did not issue certificate " + std::to_string(i + 1) +
                   " (the chain must go from the server's certificate up to its CA)";
    }
    return out;
}

bool report_all(server_rec* base)
{
    bool ok = true;
    for (server_rec* s = base; s; s = s->next) {
        const ServerConfig* sc = server_config(s);
        if (sc->tls && sc->tls->credentials) {
            const ServerCredentials& c = *sc->tls->credentials;
            const std::time_t until = gnutls_x509_crt_get_expiration_time(c.chain().leaf());
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         "mod_gnutls: " MGSLOGNO(01007) "%s: key %s; certificate %s, valid until %s, chain of %" APR_SIZE_T_FMT " "
                         "from %s",
                         server_label(s).c_str(), key_text(c.signer()).c_str(), c.chain().leaf_subject().c_str(),
                         date_text(until).c_str(), c.chain().size(), c.chain().source().c_str());
            bool expired = false;
            if (std::string problems = chain_problems(c.chain(), expired); !problems.empty())
                ap_log_error(APLOG_MARK, expired ? APLOG_ERR : APLOG_WARNING, 0, s,
                             "mod_gnutls: " MGSLOGNO(01008) "%s: %s", server_label(s).c_str(),
                             problems.substr(2).c_str());
            ok = ok && !expired;
        }
    }
    return ok;
}

} // namespace

bool report_keys(server_rec* base)
{
    try {
        return report_all(base);
    } catch (const std::exception& e) { // a C hook: nothing may escape
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, base, "mod_gnutls: " MGSLOGNO(01008) "key report failed: %s", e.what());
        return false;
    }
}

} // namespace mgs::httpd

#include "httpd/server_config.h"

#include "httpd/module_state.h"

namespace mgs::httpd {

ServerConfig* server_config(const server_rec* s)
{
    return static_cast<ServerConfig*>(ap_get_module_config(s->module_config, &gnutls_module));
}

const DirConfig* dir_config(const request_rec* r)
{
    return static_cast<const DirConfig*>(ap_get_module_config(r->per_dir_config, &gnutls_module));
}

void* create_dir_config(apr_pool_t* p, char*) { return pool_owned(p, new DirConfig()); }

void* merge_dir_config(apr_pool_t* p, void* base_v, void* add_v)
{
    const auto* base = static_cast<const DirConfig*>(base_v);
    const auto* add = static_cast<const DirConfig*>(add_v);
    auto* merged = pool_owned(p, new DirConfig());
    merged->client_verify = add->client_verify ? add->client_verify : base->client_verify;
    return merged;
}

namespace {

// A secret and its source are one setting: the vhost's wins as a pair.
template <std::optional<Secret> ServerConfig::*Value, std::optional<std::string> ServerConfig::*Source>
void merge_secret(ServerConfig& merged, const ServerConfig& base, const ServerConfig& add)
{
    const ServerConfig& from = add.*Value || add.*Source ? add : base;
    merged.*Value = from.*Value;
    merged.*Source = from.*Source;
}

} // namespace

void* create_server_config(apr_pool_t* p, server_rec*)
{
    auto* sc = pool_owned(p, new ServerConfig());
    sc->state = &module_state(p);
    sc->state->configs.push_back(sc);
    return sc;
}

void* merge_server_config(apr_pool_t* p, void* base_v, void* add_v)
{
    const auto* base = static_cast<const ServerConfig*>(base_v);
    const auto* add = static_cast<const ServerConfig*>(add_v);
    auto* merged = pool_owned(p, new ServerConfig());
    merged->state = add->state;
    merged->state->configs.push_back(merged);
    auto pick = [](const auto& a, const auto& b) { return a ? a : b; };
    merged->enabled = pick(add->enabled, base->enabled);
    merged->cert_file = pick(add->cert_file, base->cert_file);
    merged->key_file = pick(add->key_file, base->key_file);
    merged->priorities = pick(add->priorities, base->priorities);
    merged->dh_file = pick(add->dh_file, base->dh_file);
    merged->export_certificates = pick(add->export_certificates, base->export_certificates);
    merged->cache_timeout = pick(add->cache_timeout, base->cache_timeout);
    merged->session_tickets = pick(add->session_tickets, base->session_tickets);
    merged->rsa_engine = pick(add->rsa_engine, base->rsa_engine);
    merged->key_isolation = pick(add->key_isolation, base->key_isolation);
    merged->client_verify = pick(add->client_verify, base->client_verify);
    merged->client_ca_file = pick(add->client_ca_file, base->client_ca_file);
    merged->client_purpose = pick(add->client_purpose, base->client_purpose);
    merged->srp_passwd_file = pick(add->srp_passwd_file, base->srp_passwd_file);
    merged->srp_conf_file = pick(add->srp_conf_file, base->srp_conf_file);
    merged->proxy_enabled = pick(add->proxy_enabled, base->proxy_enabled);
    merged->ocsp_stapling = pick(add->ocsp_stapling, base->ocsp_stapling);
    merged->ocsp_response_files = pick(add->ocsp_response_files, base->ocsp_response_files);
    merged->ocsp_auto_refresh = pick(add->ocsp_auto_refresh, base->ocsp_auto_refresh);
    merged->ocsp_check_nonce = pick(add->ocsp_check_nonce, base->ocsp_check_nonce);
    merged->ocsp_cache_timeout = pick(add->ocsp_cache_timeout, base->ocsp_cache_timeout);
    merged->ocsp_failure_timeout = pick(add->ocsp_failure_timeout, base->ocsp_failure_timeout);
    merged->ocsp_fuzz_time = pick(add->ocsp_fuzz_time, base->ocsp_fuzz_time);
    merged->ocsp_socket_timeout = pick(add->ocsp_socket_timeout, base->ocsp_socket_timeout);
    merged->proxy_ca_file = pick(add->proxy_ca_file, base->proxy_ca_file);
    merged->proxy_crl_file = pick(add->proxy_crl_file, base->proxy_crl_file);
    merged->proxy_cert_file = pick(add->proxy_cert_file, base->proxy_cert_file);
    merged->proxy_key_file = pick(add->proxy_key_file, base->proxy_key_file);
    merged->proxy_priorities = pick(add->proxy_priorities, base->proxy_priorities);
    merge_secret<&ServerConfig::pin, &ServerConfig::pin_source>(*merged, *base, *add);
    merge_secret<&ServerConfig::srk_pin, &ServerConfig::srk_pin_source>(*merged, *base, *add);
    return merged;
}

} // namespace mgs::httpd

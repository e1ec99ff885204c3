#include "httpd/ssl_vars.h"
#include "httpd/errors.h"

#include "httpd/connection.h"
#include "src/tls_variables.h"

#include <ap_expr.h>
#include <mod_log_config.h>
#include <mod_ssl.h>

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

namespace {

VariableOptions options_for(const server_rec* s)
{
    VariableOptions o;
    o.interface_version = "mod_gnutls/" MGS_VERSION;
    if (s)
        o.export_cert_limit = server_config(s)->export_certificates.value_or(0);
    return o;
}

const ConnState* tls_state(const conn_rec* c)
{
    const ConnState* st = c ? conn_state(c->master ? c->master : c) : nullptr;
    return st && st->phase != Phase::plain_http ? st : nullptr;
}

const char* lookup(apr_pool_t* p, server_rec* s, conn_rec* c, request_rec* r, const char* name) noexcept
{
    try {
        if (!name)
            return nullptr;
        if (r && !c)
            c = r->connection;
        const ConnState* st = tls_state(c);
        if (!st)
            return strcmp(name, "HTTPS") == 0 ? "off" : nullptr;
        auto v = tls_variable(st->tls, name, options_for(r ? r->server : s));
        return v ? apr_pstrmemdup(p, v->data(), v->size()) : nullptr;
    } catch (...) {
        return nullptr;
    }
}

// mod_ssl's optional function: "" for what it does not know.
char* ssl_var_lookup(apr_pool_t* p, server_rec* s, conn_rec* c, request_rec* r, char* name)
{
    const char* v = lookup(p, s, c, r, name);
    return apr_pstrdup(p, v ? v : "");
}

const char* var_lookup_hook(apr_pool_t* p, server_rec* s, conn_rec* c, request_rec* r, const char* name)
{
    return lookup(p, s, c, r, name);
}

// mod_gnutls exports its variables to every request on a TLS connection.
int fixups(request_rec* r)
{
    const ConnState* st = tls_state(r->connection);
    if (!st)
        return DECLINED;
    // A subrequest made after its parent's fixups (mod_dir's index lookup,
    // mod_include) starts with a copy of the parent's environment: the same
    // connection, the same values.
    if (r->main && apr_table_get(r->subprocess_env, "SSL_PROTOCOL"))
        return DECLINED;
    try {
        for (const auto& [k, v] : tls_variables(st->tls, options_for(r->server)))
            apr_table_set(r->subprocess_env, k.c_str(), v.c_str());
    } catch (const std::exception& e) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_gnutls: " MGSLOGNO(01701) "cannot export SSL variables: %s", e.what());
    }
    return DECLINED;
}

// mod_log_config's %{NAME}x, as mod_ssl provides it.
const char* log_variable(request_rec* r, char* name)
{
    const char* v = lookup(r->pool, r->server, r->connection, r, name);
    return v && *v ? v : nullptr;
}

// ap_expr: %{SSL_NAME} variables and the SSL() function (%{SSL:NAME}).
const char* expr_var(ap_expr_eval_ctx_t* ctx, const void* data)
{
    return lookup(ctx->p, ctx->s, ctx->c, ctx->r, static_cast<const char*>(data));
}

const char* expr_func(ap_expr_eval_ctx_t* ctx, const void*, const char* arg)
{
    const char* v = lookup(ctx->p, ctx->s, ctx->c, ctx->r, arg);
    return v ? v : "";
}

int expr_lookup(ap_expr_lookup_parms* parms)
{
    if (parms->type == AP_EXPR_FUNC_VAR && strncmp(parms->name, "SSL_", 4) == 0) {
        *parms->func = reinterpret_cast<const void*>(expr_var);
        *parms->data = parms->name;
        return OK;
    }
    if (parms->type == AP_EXPR_FUNC_STRING && strcmp(parms->name, "SSL") == 0) {
        *parms->func = reinterpret_cast<const void*>(expr_func);
        *parms->data = nullptr;
        return OK;
    }
    return DECLINED;
}

int pre_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*)
{
    static char tag[] = "x";
    if (auto* register_handler = APR_RETRIEVE_OPTIONAL_FN(ap_register_log_handler))
        register_handler(pconf, tag, log_variable, 0);
    return OK;
}

} // namespace

void register_ssl_vars()
{
    ap_hook_pre_config(pre_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    APR_REGISTER_OPTIONAL_FN(ssl_var_lookup);
    ap_hook_ssl_var_lookup(var_lookup_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_fixups(fixups, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_expr_lookup(expr_lookup, nullptr, nullptr, APR_HOOK_MIDDLE);
}

} // namespace mgs::httpd

#include "httpd/sni.h"

#include "httpd/server_config.h"

#include <apr_fnmatch.h>
#include <string>

namespace mgs::httpd {

namespace {

struct Search {
    std::string name;
    server_rec* found = nullptr;
};

bool names_match(const server_rec* s, const char* name)
{
    if (s->server_hostname && !strcasecmp(s->server_hostname, name))
        return true;
    if (s->names) {
        auto** names = reinterpret_cast<char**>(s->names->elts);
        for (int i = 0; i < s->names->nelts; ++i)
            if (names[i] && !strcasecmp(names[i], name))
                return true;
    }
    if (s->wild_names) {
        auto** names = reinterpret_cast<char**>(s->wild_names->elts);
        for (int i = 0; i < s->wild_names->nelts; ++i)
            if (names[i] && apr_fnmatch(names[i], name, APR_FNM_CASE_BLIND) == APR_SUCCESS)
                return true;
    }
    return false;
}

int visit(void* baton, conn_rec*, server_rec* s)
{
    auto* search = static_cast<Search*>(baton);
    const ServerConfig* sc = server_config(s);
    if (sc->tls && names_match(s, search->name.c_str())) {
        search->found = s;
        return 1; // stop: first match wins, in configuration order
    }
    return 0;
}

} // namespace

server_rec* find_sni_server(conn_rec* c, std::string_view name)
{
    if (name.empty())
        return nullptr;
    Search search{std::string(name)};
    ap_vhost_iterate_given_conn(c, visit, &search);
    return search.found;
}

} // namespace mgs::httpd

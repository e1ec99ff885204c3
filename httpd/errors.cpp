#include "httpd/errors.h"

namespace mgs::httpd {

std::string server_label(const server_rec* s)
{
    // At parse time a virtual host may not have its ServerName yet.
    std::string name = s->server_hostname ? std::string(s->server_hostname) + " " : std::string();
    if (!s->is_virtual)
        return s->server_hostname ? std::string("main server ") + s->server_hostname : "main server";
    std::string addrs;
    for (const server_addr_rec* a = s->addrs; a; a = a->next) {
        if (!addrs.empty())
            addrs += ' ';
        addrs += a->virthost ? a->virthost : "*";
        addrs += ':' + (a->host_port ? std::to_string(a->host_port) : std::string("*"));
    }
    std::string where;
    if (s->defn_name)
        where = std::string(" at ") + s->defn_name + ":" + std::to_string(s->defn_line_number);
    return "virtual host " + name + "(<VirtualHost " + addrs + ">" + where + ")";
}

} // namespace mgs::httpd

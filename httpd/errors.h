// Names a server the way an administrator finds it in the configuration.
#pragma once

#include "httpd/apache.h"

#include <string>

namespace mgs::httpd {

// "virtual host www.example.com (<VirtualHost 127.0.0.1:443> at /etc/apache2/sites-enabled/x.conf:3)"
std::string server_label(const server_rec* s);

} // namespace mgs::httpd

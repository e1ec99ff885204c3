// Names a server the way an administrator finds it in the configuration.
#pragma once

#include "httpd/apache.h"

#include <string>

// A stable identifier for a log line, as Apache's APLOGNO: docs/errors.md
// and tests name lines by it, not by their prose. Numbers by file:
// 010xx configuration, 011xx OCSP, 012xx socache, 013xx connections and
// requests, 014xx back ends, 015xx filters, 016xx TPM key agent, 017xx
// variables.
#define MGSLOGNO(n) "MGS" #n ": "

namespace mgs::httpd {

// "virtual host www.example.com (<VirtualHost 127.0.0.1:443> at /etc/apache2/sites-enabled/x.conf:3)"
std::string server_label(const server_rec* s);

} // namespace mgs::httpd

// The values behind mod_ssl-compatible SSL_* variables, read from an
// established session and the server certificate it presented.
#pragma once

#include "src/certificate_fields.h"
#include "src/tls_connection.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mgs {

struct VariableOptions {
    std::string interface_version;   // SSL_VERSION_INTERFACE, e.g. "mod_gnutls/0.1.0"
    std::size_t export_cert_limit = 0; // GnuTLSExportCertificates: 0 = off
};

// One variable by name (as ssl_var_lookup asks), or nullopt if unknown/unset.
std::optional<std::string> tls_variable(const TlsConnection& conn, std::string_view name,
                                        const VariableOptions& options);
// Everything exported to CGI/SSI for this connection.
std::vector<std::pair<std::string, std::string>> tls_variables(const TlsConnection& conn,
                                                               const VariableOptions& options);

} // namespace mgs

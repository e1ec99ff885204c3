// SRP password authentication (RFC 5054) from srptool's tpasswd files.
#pragma once

#include <gnutls/gnutls.h>

#include <memory>
#include <string>

namespace mgs {

class SrpCredentials {
public:
    // Throws mgs::Error naming the files when GnuTLS cannot use them.
    SrpCredentials(const std::string& passwd_file, const std::string& conf_file);
    gnutls_srp_server_credentials_t get() const { return creds_.get(); }

private:
    struct Free {
        void operator()(gnutls_srp_server_credentials_t c) const noexcept { gnutls_srp_free_server_credentials(c); }
    };
    std::unique_ptr<std::remove_pointer_t<gnutls_srp_server_credentials_t>, Free> creds_;
};

} // namespace mgs

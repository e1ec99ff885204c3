#include "src/srp_credentials.h"

#include "keystore/error.h"
#include "keystore/file_io.h"

namespace mgs {

SrpCredentials::SrpCredentials(const std::string& passwd_file, const std::string& conf_file)
{
    // GnuTLS reads the files lazily per handshake; read them now so a missing
    // or unreadable file fails configtest instead of every SRP handshake.
    read_file(passwd_file);
    read_file(conf_file);
    gnutls_srp_server_credentials_t c = nullptr;
    if (int rc = gnutls_srp_allocate_server_credentials(&c); rc < 0)
        throw_gnutls("gnutls_srp_allocate_server_credentials", rc);
    creds_.reset(c);
    if (int rc = gnutls_srp_set_server_credentials_file(c, passwd_file.c_str(), conf_file.c_str()); rc < 0)
        throw_gnutls("cannot use SRP files " + passwd_file + " and " + conf_file, rc);
}

} // namespace mgs

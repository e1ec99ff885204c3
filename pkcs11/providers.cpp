#include "pkcs11/providers.h"

#include "keystore/error.h"

#include <gnutls/pkcs11.h>

namespace mgs::pkcs11 {

void load_providers(const std::vector<std::string>& modules)
{
    gnutls_pkcs11_deinit();
    if (modules.empty()) {
        if (int rc = gnutls_pkcs11_init(GNUTLS_PKCS11_FLAG_AUTO, nullptr); rc < 0)
            throw_gnutls("cannot load p11-kit's configured PKCS#11 modules", rc);
        return;
    }
    if (int rc = gnutls_pkcs11_init(GNUTLS_PKCS11_FLAG_MANUAL, nullptr); rc < 0)
        throw_gnutls("cannot initialise PKCS#11", rc);
    for (const auto& m : modules)
        if (int rc = gnutls_pkcs11_add_provider(m.c_str(), nullptr); rc < 0)
            throw_gnutls("cannot load PKCS#11 module " + m, rc);
}

} // namespace mgs::pkcs11

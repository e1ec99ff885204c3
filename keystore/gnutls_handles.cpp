#include "keystore/gnutls_handles.h"

#include "keystore/error.h"

namespace mgs {

namespace {

// One GnuTLS object made by its init function, owned by `Owner`.
template <typename Owner, typename Handle>
Owner make(int (*init)(Handle*), const char* name)
{
    Handle h = nullptr;
    if (int rc = init(&h); rc < 0)
        throw_gnutls(name, rc);
    return Owner(h);
}

} // namespace

PrivKey new_privkey() { return make<PrivKey>(gnutls_privkey_init, "gnutls_privkey_init"); }
PubKey new_pubkey() { return make<PubKey>(gnutls_pubkey_init, "gnutls_pubkey_init"); }
X509PrivKey new_x509_privkey() { return make<X509PrivKey>(gnutls_x509_privkey_init, "gnutls_x509_privkey_init"); }
X509Crt new_x509_crt() { return make<X509Crt>(gnutls_x509_crt_init, "gnutls_x509_crt_init"); }

CertCredentials new_certificate_credentials()
{
    return make<CertCredentials>(gnutls_certificate_allocate_credentials, "gnutls_certificate_allocate_credentials");
}

} // namespace mgs

#include "keystore/gnutls_handles.h"

#include "keystore/error.h"

namespace mgs {

PrivKey new_privkey()
{
    gnutls_privkey_t k = nullptr;
    if (int rc = gnutls_privkey_init(&k); rc < 0)
        throw_gnutls("gnutls_privkey_init", rc);
    return PrivKey(k);
}

PubKey new_pubkey()
{
    gnutls_pubkey_t k = nullptr;
    if (int rc = gnutls_pubkey_init(&k); rc < 0)
        throw_gnutls("gnutls_pubkey_init", rc);
    return PubKey(k);
}

X509PrivKey new_x509_privkey()
{
    gnutls_x509_privkey_t k = nullptr;
    if (int rc = gnutls_x509_privkey_init(&k); rc < 0)
        throw_gnutls("gnutls_x509_privkey_init", rc);
    return X509PrivKey(k);
}

X509Crt new_x509_crt()
{
    gnutls_x509_crt_t c = nullptr;
    if (int rc = gnutls_x509_crt_init(&c); rc < 0)
        throw_gnutls("gnutls_x509_crt_init", rc);
    return X509Crt(c);
}

} // namespace mgs

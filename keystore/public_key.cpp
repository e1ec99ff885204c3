#include "keystore/public_key.h"

#include "keystore/error.h"

namespace mgs {

Bytes public_key_der(gnutls_pubkey_t key)
{
    GnutlsDatum der;
    if (int rc = gnutls_pubkey_export2(key, GNUTLS_X509_FMT_DER, &der.d); rc < 0)
        throw_gnutls("cannot encode a public key", rc);
    return Bytes(der.d.data, der.d.data + der.d.size);
}

PubKey public_key_from_der(const Bytes& der, const std::string& what)
{
    PubKey pub = new_pubkey();
    gnutls_datum_t d{const_cast<unsigned char*>(der.data()), static_cast<unsigned>(der.size())};
    if (int rc = gnutls_pubkey_import(pub.get(), &d, GNUTLS_X509_FMT_DER); rc < 0)
        throw_gnutls(what, rc);
    return pub;
}

} // namespace mgs

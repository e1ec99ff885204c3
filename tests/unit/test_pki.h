// Keys and self-signed certificates made in memory with GnuTLS, so unit
// tests need no files or external tools.
#pragma once

#include "keystore/gnutls_handles.h"
#include "keystore/signer.h"

#include <ostream>
#include <string>

namespace mgs::test {

struct KeyType {
    std::string name;
    gnutls_pk_algorithm_t pk;
    unsigned bits; // or the curve, for GNUTLS_PK_ECDSA
};

const std::vector<KeyType>& all_key_types();
// GoogleTest prints parameters with this instead of their bytes.
inline void PrintTo(const KeyType& k, std::ostream* os) { *os << k.name; }

struct TestIdentity {
    X509PrivKey key;
    X509Crt cert;
    std::string cert_pem;
    Bytes export_key(gnutls_x509_crt_fmt_t fmt, bool pkcs8, const char* password = nullptr) const;
};

// Cached per key type: RSA-4096 generation takes seconds.
const TestIdentity& identity_for(const KeyType& type);
TestIdentity make_identity(const KeyType& type);

} // namespace mgs::test

#include "test_pki.h"

#include "keystore/error.h"

#include <map>
#include <memory>

namespace mgs::test {

const std::vector<KeyType>& all_key_types()
{
    static const std::vector<KeyType> types{
        {"rsa2048", GNUTLS_PK_RSA, 2048},
        {"rsa3072", GNUTLS_PK_RSA, 3072},
        {"rsa4096", GNUTLS_PK_RSA, 4096},
        {"p256", GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1)},
        {"p384", GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1)},
        {"ed25519", GNUTLS_PK_EDDSA_ED25519, 256},
    };
    return types;
}

TestIdentity make_identity(const KeyType& type)
{
    TestIdentity id{new_x509_privkey(), new_x509_crt(), {}};
    if (int rc = gnutls_x509_privkey_generate(id.key.get(), type.pk, type.bits, 0); rc < 0)
        throw_gnutls("generate " + type.name, rc);

    gnutls_x509_crt_t crt = id.cert.get();
    gnutls_x509_crt_set_version(crt, 3);
    unsigned char serial[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
    gnutls_x509_crt_set_activation_time(crt, time(nullptr) - 3600);
    gnutls_x509_crt_set_expiration_time(crt, time(nullptr) + 86400);
    gnutls_x509_crt_set_dn(crt, ("CN=" + type.name + ".test").c_str(), nullptr);
    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9, GNUTLS_FSAN_SET);
    gnutls_x509_crt_set_key(crt, id.key.get());
    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
    if (int rc = gnutls_x509_crt_sign2(crt, crt, id.key.get(), GNUTLS_DIG_UNKNOWN, 0); rc < 0)
        throw_gnutls("self-sign " + type.name, rc);
    GnutlsDatum pem;
    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem.d);
    id.cert_pem.assign(reinterpret_cast<char*>(pem.d.data), pem.d.size);
    return id;
}

const TestIdentity& identity_for(const KeyType& type)
{
    static std::map<std::string, std::unique_ptr<TestIdentity>> cache;
    auto& slot = cache[type.name];
    if (!slot)
        slot = std::make_unique<TestIdentity>(make_identity(type));
    return *slot;
}

Bytes TestIdentity::export_key(gnutls_x509_crt_fmt_t fmt, bool pkcs8, const char* password) const
{
    // Ed25519 has no encoding but PKCS#8 (RFC 8410).
    if (gnutls_x509_privkey_get_pk_algorithm(key.get()) == GNUTLS_PK_EDDSA_ED25519)
        pkcs8 = true;
    GnutlsDatum out;
    int rc = pkcs8 ? gnutls_x509_privkey_export2_pkcs8(key.get(), fmt, password,
                                                       password ? GNUTLS_PKCS_PBES2_AES_256 : GNUTLS_PKCS_PLAIN,
                                                       &out.d)
                   : gnutls_x509_privkey_export2(key.get(), fmt, &out.d);
    if (rc < 0)
        throw_gnutls("export key", rc);
    return Bytes(out.d.data, out.d.data + out.d.size);
}

} // namespace mgs::test

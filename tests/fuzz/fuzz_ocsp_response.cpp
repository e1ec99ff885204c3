// OCSP response checking (src/ocsp_client.h) on arbitrary DER, for a fixed
// certificate and issuer (made once with certtool: an ECDSA test CA and a
// leaf, serial 2, valid until 9999). The seed corpus holds responses for
// them made with `openssl ocsp` (good, revoked, unknown, with a nonce,
// without nextUpdate, nextUpdate centuries away, error statuses), so the
// checks past the signature are reached. mgs::Error is how a response is
// refused.
#include "src/ocsp_client.h"

#include "keystore/error.h"
#include "keystore/gnutls_handles.h"

#include <gnutls/ocsp.h>
#include <gnutls/x509.h>

#include <cstdint>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace {

constexpr char ca_pem[] = R"(-----BEGIN CERTIFICATE-----
MIIBdjCCARygAwIBAgIBATAKBggqhkjOPQQDAjAXMRUwEwYDVQQDEwxGdXp6IFRl
c3QgQ0EwIBcNMjYxMjAzMDkwODQwWhgPOTk5OTEyMzEyMzU5NTlaMBcxFTATBgNV
BAMTDEZ1enogVGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABPKksG8t
hFp6RY2SuBYjltC6zOyTEcAAE/ej1/JJX7bArFI8z2n4bA2YJJrzO1RCFKn9uUs5
rw/guqZmBlF7LBKjVzBVMA8GA1UdEwEB/wQFMAMBAf8wEwYDVR0lBAwwCgYIKwYB
BQUHAwkwDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBTj+TtvK4lIGHOtHuntBAcL
pTsETjAKBggqhkjOPQQDAgNIADBFAiEA/DyXPreFYd+b/RqQif4d2NBcnc2A7t6f
OflXwXfNYgQCIDlE2itXgb2he2jHMwWoObK6FYMPWyilbTGiGZuwfDJq
-----END CERTIFICATE-----
)";

constexpr char leaf_pem[] = R"(-----BEGIN CERTIFICATE-----
MIICFjCCAbygAwIBAgIBAjAKBggqhkjOPQQDAjAXMRUwEwYDVQQDEwxGdXp6IFRl
c3QgQ0EwIBcNMjYxMjAzMDkwODQwWhgPOTk5OTEyMzEyMzU5NTlaMBoxGDAWBgNV
BAMTD3d3dy5leGFtcGxlLm9yZzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMQP
U/6Hbq0Ihd8V6xuwrIaJlxg+Vtrei7j8H5gNuiU5kL98F1oHndMOSOYMyuNAhXlM
/zBveIZiElnnrupbKeejgfMwgfAwDAYDVR0TAQH/BAIwADBHBgNVHREEQDA+gg93
d3cuZXhhbXBsZS5vcmeCC2V4YW1wbGUub3JnhhhodHRwczovL3d3dy5leGFtcGxl
Lm9yZy+HBMAAAgEwEwYDVR0lBAwwCgYIKwYBBQUHAwEwMgYIKwYBBQUHAQEEJjAk
MCIGCCsGAQUFBzABhhZodHRwOi8vMTI3LjAuMC4xOjg4ODgvMA4GA1UdDwEB/wQE
AwIHgDAdBgNVHQ4EFgQU9kiRTheY8eO38a/soFw0xFiSb8cwHwYDVR0jBBgwFoAU
4/k7byuJSBhzrR7p7QQHC6U7BE4wCgYIKoZIzj0EAwIDSAAwRQIgWzF6tm+Jqh35
jspT5t8p28DDEarn1XTKpGOrOL0xBAQCIQD8fY+uk+OgbR0Ll1yfl6cmTSbrnGhH
L04rDhng9iVStg==
-----END CERTIFICATE-----
)";

gnutls_x509_crt_t load(const char* pem)
{
    gnutls_x509_crt_t crt = nullptr;
    gnutls_datum_t d{reinterpret_cast<unsigned char*>(const_cast<char*>(pem)),
                     static_cast<unsigned>(std::strlen(pem))};
    if (gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) < 0)
        std::abort();
    return crt;
}

struct Pair {
    mgs::X509Crt cert{load(leaf_pem)};
    mgs::X509Crt issuer{load(ca_pem)};
};

// The nonce the response carries, if any (to pass the nonce check too).
mgs::Bytes nonce_of(const mgs::Bytes& der)
{
    gnutls_ocsp_resp_t r;
    if (gnutls_ocsp_resp_init(&r) < 0)
        return {};
    mgs::Bytes out;
    gnutls_datum_t d{const_cast<unsigned char*>(der.data()), static_cast<unsigned>(der.size())};
    gnutls_datum_t n{};
    if (gnutls_ocsp_resp_import(r, &d) >= 0 && gnutls_ocsp_resp_get_nonce(r, nullptr, &n) >= 0) {
        out.assign(n.data, n.data + n.size);
        gnutls_free(n.data);
    }
    gnutls_ocsp_resp_deinit(r);
    return out;
}

void check(const mgs::Bytes& der, const Pair& p, const mgs::Bytes& nonce)
{
    try {
        mgs::CheckedOcspResponse ok = mgs::check_ocsp_response(der, p.cert.get(), p.issuer.get(), nonce);
        if (ok.der != der)
            std::abort();
        if (ok.next_update < std::chrono::system_clock::now() - std::chrono::seconds(5))
            std::abort(); // accepted although expired
    } catch (const mgs::Error&) {
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static const Pair pair; // global GnuTLS state and the pair, once
    mgs::Bytes der(data, data + size);
    check(der, pair, {});
    mgs::Bytes nonce = nonce_of(der);
    if (!nonce.empty())
        check(der, pair, nonce);
    check(der, pair, mgs::Bytes{1, 2, 3, 4}); // a nonce it does not carry
    return 0;
}

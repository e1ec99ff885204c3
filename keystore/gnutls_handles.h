// RAII owners for the GnuTLS handles the project holds.
#pragma once

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <memory>
#include <string>
#include <vector>

namespace mgs {

template <auto Deinit>
struct GnutlsDeleter {
    template <typename T>
    void operator()(T* p) const noexcept { Deinit(p); }
};

using PrivKey = std::unique_ptr<gnutls_privkey_st, GnutlsDeleter<gnutls_privkey_deinit>>;
using PubKey = std::unique_ptr<gnutls_pubkey_st, GnutlsDeleter<gnutls_pubkey_deinit>>;
using X509PrivKey = std::unique_ptr<gnutls_x509_privkey_int, GnutlsDeleter<gnutls_x509_privkey_deinit>>;
using X509Crt = std::unique_ptr<gnutls_x509_crt_int, GnutlsDeleter<gnutls_x509_crt_deinit>>;
using CertCredentials = std::unique_ptr<gnutls_certificate_credentials_st,
                                        GnutlsDeleter<gnutls_certificate_free_credentials>>;
using Priority = std::unique_ptr<gnutls_priority_st, GnutlsDeleter<gnutls_priority_deinit>>;
using Session = std::unique_ptr<gnutls_session_int, GnutlsDeleter<gnutls_deinit>>;

// Memory GnuTLS allocated for us (gnutls_datum_t.data from *_export2 etc.).
struct GnutlsDatum {
    gnutls_datum_t d{nullptr, 0};
    GnutlsDatum() = default;
    GnutlsDatum(const GnutlsDatum&) = delete;
    GnutlsDatum& operator=(const GnutlsDatum&) = delete;
    ~GnutlsDatum() { gnutls_free(d.data); }
    std::string text() const { return std::string(reinterpret_cast<const char*>(d.data), d.size); }
    std::vector<std::uint8_t> bytes() const { return std::vector<std::uint8_t>(d.data, d.data + d.size); }
};

PrivKey new_privkey();
PubKey new_pubkey();
X509PrivKey new_x509_privkey();
X509Crt new_x509_crt();
CertCredentials new_certificate_credentials();

} // namespace mgs

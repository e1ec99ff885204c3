#include "src/ocsp_client.h"

#include "keystore/error.h"

#include <gnutls/crypto.h>
#include <gnutls/ocsp.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

namespace mgs {

namespace {

struct OcspReq {
    gnutls_ocsp_req_t r = nullptr;
    OcspReq() { gnutls_ocsp_req_init(&r); }
    ~OcspReq() { gnutls_ocsp_req_deinit(r); }
};

struct OcspResp {
    gnutls_ocsp_resp_t r = nullptr;
    OcspResp() { gnutls_ocsp_resp_init(&r); }
    ~OcspResp() { gnutls_ocsp_resp_deinit(r); }
};

} // namespace

std::string ocsp_responder_uri(gnutls_x509_crt_t cert)
{
    for (unsigned seq = 0;; ++seq) {
        GnutlsDatum d;
        int rc = gnutls_x509_crt_get_authority_info_access(cert, seq, GNUTLS_IA_OCSP_URI, &d.d, nullptr);
        if (rc == GNUTLS_E_UNKNOWN_ALGORITHM)
            continue; // another access method at this position
        if (rc < 0)
            return {};
        std::string uri = d.text();
        if (uri.rfind("http://", 0) == 0)
            return uri;
    }
}

OcspRequest make_ocsp_request(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer, bool with_nonce)
{
    OcspReq req;
    if (int rc = gnutls_ocsp_req_add_cert(req.r, GNUTLS_DIG_SHA1, issuer, cert); rc < 0)
        throw_gnutls("cannot build the OCSP request", rc);
    OcspRequest out;
    if (with_nonce) {
        out.nonce.resize(23);
        gnutls_rnd(GNUTLS_RND_NONCE, out.nonce.data(), out.nonce.size());
        gnutls_datum_t n{out.nonce.data(), static_cast<unsigned>(out.nonce.size())};
        if (int rc = gnutls_ocsp_req_set_nonce(req.r, 0, &n); rc < 0)
            throw_gnutls("cannot set the OCSP nonce", rc);
    }
    GnutlsDatum der;
    if (int rc = gnutls_ocsp_req_export(req.r, &der.d); rc < 0)
        throw_gnutls("cannot encode the OCSP request", rc);
    out.der = der.bytes();
    return out;
}

CheckedOcspResponse check_ocsp_response(const Bytes& der, gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer,
                                        const Bytes& nonce)
{
    OcspResp resp;
    gnutls_datum_t d{const_cast<unsigned char*>(der.data()), static_cast<unsigned>(der.size())};
    if (int rc = gnutls_ocsp_resp_import(resp.r, &d); rc < 0)
        throw_gnutls("the OCSP response cannot be parsed", rc);
    if (int status = gnutls_ocsp_resp_get_status(resp.r); status != GNUTLS_OCSP_RESP_SUCCESSFUL)
        throw Error("the OCSP responder answered with status " + std::to_string(status) +
                    " (1 malformed request, 2 internal error, 3 try later, 5 signature required, 6 unauthorized)");
    unsigned verify = 0;
    if (int rc = gnutls_ocsp_resp_verify_direct(resp.r, issuer, &verify, 0); rc < 0)
        throw_gnutls("the OCSP response signature cannot be checked", rc);
    if (verify != 0)
        throw Error("the OCSP response is not signed by the certificate's issuer or a responder it authorised "
                    "(verification flags 0x" + [&] {
                        char b[16];
                        std::snprintf(b, sizeof b, "%x", verify);
                        return std::string(b);
                    }() + ")");
    if (gnutls_ocsp_resp_check_crt(resp.r, 0, cert) != 0)
        throw Error("the OCSP response is about another certificate");
    unsigned cert_status = 0;
    time_t this_update = 0, next_update = 0, revocation = 0;
    unsigned reason = 0;
    if (int rc = gnutls_ocsp_resp_get_single(resp.r, 0, nullptr, nullptr, nullptr, nullptr, &cert_status,
                                             &this_update, &next_update, &revocation, &reason);
        rc < 0)
        throw_gnutls("the OCSP response has no certificate status", rc);
    if (cert_status == GNUTLS_OCSP_CERT_REVOKED)
        throw Error("the OCSP responder says the certificate is REVOKED");
    if (cert_status != GNUTLS_OCSP_CERT_GOOD)
        throw Error("the OCSP responder does not know the certificate (status unknown)");
    const time_t now = ::time(nullptr);
    constexpr time_t skew = 300; // clocks differ a little
    if (this_update > now + skew)
        throw Error("the OCSP response is not yet valid (thisUpdate in the future)");
    if (next_update != static_cast<time_t>(-1) && next_update < now)
        throw Error("the OCSP response has expired (nextUpdate in the past)");
    if (!nonce.empty()) {
        GnutlsDatum got;
        if (gnutls_ocsp_resp_get_nonce(resp.r, nullptr, &got.d) < 0)
            throw Error("the OCSP response carries no nonce (GnuTLSOCSPCheckNonce is on)");
        if (got.bytes() != nonce)
            throw Error("the OCSP response's nonce does not match the request's");
    }
    CheckedOcspResponse out{der, std::chrono::system_clock::time_point::max()};
    // A nextUpdate beyond what system_clock holds (nanoseconds: the year
    // 2262) is taken as none; from_time_t() would overflow.
    constexpr auto clock_max_seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::duration::max()).count();
    if (next_update != static_cast<time_t>(-1) && next_update < clock_max_seconds)
        out.next_update = std::chrono::system_clock::from_time_t(next_update);
    return out;
}

} // namespace mgs

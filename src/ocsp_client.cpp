#include "src/ocsp_client.h"

#include "keystore/error.h"

#include <gnutls/crypto.h>
#include <gnutls/ocsp.h>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

namespace mgs {

namespace {

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

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

struct Uri {
    std::string host, port = "80", path = "/";
};

Uri parse_http_uri(const std::string& uri)
{
    constexpr std::string_view scheme = "http://";
    if (uri.rfind(scheme, 0) != 0)
        throw Error("OCSP responder " + uri + ": only http:// responders are supported");
    Uri u;
    std::string rest = uri.substr(scheme.size());
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    if (slash != std::string::npos)
        u.path = rest.substr(slash);
    if (!authority.empty() && authority[0] == '[') { // [IPv6]:port
        auto close = authority.find(']');
        u.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':')
            u.port = authority.substr(close + 2);
    } else if (auto colon = authority.rfind(':'); colon != std::string::npos) {
        u.host = authority.substr(0, colon);
        u.port = authority.substr(colon + 1);
    } else {
        u.host = authority;
    }
    if (u.host.empty())
        throw Error("OCSP responder " + uri + ": no host");
    return u;
}

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

Bytes http_post_ocsp(const std::string& uri, const Bytes& body, std::chrono::seconds timeout)
{
    Uri u = parse_http_uri(uri);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &found); rc != 0)
        throw Error("OCSP responder " + uri + ": cannot resolve " + u.host + ": " + ::gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addrs(found, ::freeaddrinfo);
    std::string last_error = "no address";
    for (addrinfo* a = found; a; a = a->ai_next) {
        Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
        if (fd.get() < 0)
            continue;
        timeval tv{static_cast<time_t>(timeout.count()), 0};
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) < 0) {
            last_error = std::strerror(errno);
            continue;
        }
        std::string head = "POST " + u.path + " HTTP/1.0\r\nHost: " + u.host +
                           (u.port == "80" ? "" : ":" + u.port) +
                           "\r\nContent-Type: application/ocsp-request\r\nAccept: application/ocsp-response\r\n"
                           "Content-Length: " +
                           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
        Bytes out(head.begin(), head.end());
        out.insert(out.end(), body.begin(), body.end());
        for (std::size_t sent = 0; sent < out.size();) {
            ssize_t n = ::send(fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
            if (n <= 0)
                throw Error("OCSP responder " + uri + ": sending the request failed: " + std::strerror(errno));
            sent += static_cast<std::size_t>(n);
        }
        std::string reply;
        char buf[4096];
        std::size_t body_at = std::string::npos, body_len = std::string::npos;
        for (;;) {
            if (body_at != std::string::npos && body_len != std::string::npos && reply.size() >= body_at + body_len)
                break; // complete: responders may keep the connection open
            ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
            if (n == 0)
                break;
            if (n < 0)
                throw Error("OCSP responder " + uri + ": " +
                            (errno == EAGAIN || errno == EWOULDBLOCK ? std::string("timed out")
                                                                     : std::string(std::strerror(errno))));
            reply.append(buf, static_cast<std::size_t>(n));
            if (reply.size() > 1024 * 1024)
                throw Error("OCSP responder " + uri + ": response too large");
            if (body_at == std::string::npos) {
                if (auto end = reply.find("\r\n\r\n"); end != std::string::npos) {
                    body_at = end + 4;
                    std::string head_lower = reply.substr(0, end);
                    for (auto& ch : head_lower)
                        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                    if (auto cl = head_lower.find("\r\ncontent-length:"); cl != std::string::npos)
                        body_len = std::strtoul(head_lower.c_str() + cl + 17, nullptr, 10);
                }
            }
        }
        if (reply.rfind("HTTP/1.", 0) != 0 || body_at == std::string::npos)
            throw Error("OCSP responder " + uri + ": not an HTTP response");
        std::string status = reply.substr(9, 3);
        if (status != "200")
            throw Error("OCSP responder " + uri + ": HTTP status " + reply.substr(9, reply.find("\r\n") - 9));
        std::size_t len = body_len == std::string::npos ? reply.size() - body_at : std::min(body_len, reply.size() - body_at);
        return Bytes(reply.begin() + static_cast<std::ptrdiff_t>(body_at),
                     reply.begin() + static_cast<std::ptrdiff_t>(body_at + len));
    }
    throw Error("OCSP responder " + uri + ": cannot connect: " + last_error);
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
    if (next_update != static_cast<time_t>(-1))
        out.next_update = std::chrono::system_clock::from_time_t(next_update);
    return out;
}

} // namespace mgs

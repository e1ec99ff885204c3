#include "httpd/ocsp_fetch.h"

#include "keystore/error.h"
#include "src/ocsp_http_reply.h"

#include <apr_network_io.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include <arpa/inet.h>
#include <netdb.h>

#include <cstring>
#include <vector>

namespace mgs::httpd {

namespace {

using Clock = std::chrono::steady_clock;

struct SubPool {
    explicit SubPool(apr_pool_t* parent) { apr_pool_create(&p, parent); }
    ~SubPool() { apr_pool_destroy(p); }
    SubPool(const SubPool&) = delete;
    SubPool& operator=(const SubPool&) = delete;
    apr_pool_t* p = nullptr;
};

std::string apr_error(apr_status_t rv)
{
    char buf[256];
    return apr_strerror(rv, buf, sizeof buf);
}

apr_interval_time_t left(Clock::time_point deadline)
{
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
    return us > 0 ? static_cast<apr_interval_time_t>(us) : 0;
}

// The responder's addresses as numeric strings, resolved with glibc's
// asynchronous resolver so that a slow DNS server cannot hold the fetch past
// its deadline (getaddrinfo, and APR's resolver with it, has no timeout).
std::vector<std::string> resolve(const std::string& host, const std::string& uri, Clock::time_point deadline)
{
    unsigned char probe[sizeof(in6_addr)];
    if (::inet_pton(AF_INET, host.c_str(), probe) == 1 || ::inet_pton(AF_INET6, host.c_str(), probe) == 1)
        return {host};
    // Owned by the resolver thread until it is done: on a timeout that
    // cannot be cancelled it is left to it (a few hundred bytes).
    struct Lookup {
        std::string host;
        addrinfo hints{};
        gaicb cb{};
    };
    auto* l = new Lookup{host};
    l->hints.ai_socktype = SOCK_STREAM;
    l->cb.ar_name = l->host.c_str();
    l->cb.ar_request = &l->hints;
    gaicb* list[1] = {&l->cb};
    if (int rc = ::getaddrinfo_a(GAI_NOWAIT, list, 1, nullptr); rc != 0) {
        delete l;
        throw Error("OCSP responder " + uri + ": cannot resolve " + host + ": " + ::gai_strerror(rc));
    }
    int rc;
    while ((rc = ::gai_error(&l->cb)) == EAI_INPROGRESS) {
        apr_interval_time_t us = left(deadline);
        if (us == 0)
            break;
        timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
        const gaicb* wait[1] = {&l->cb};
        ::gai_suspend(wait, 1, &ts);
    }
    if (rc == EAI_INPROGRESS) {
        if (::gai_cancel(&l->cb) == EAI_CANCELED) {
            if (l->cb.ar_result)
                ::freeaddrinfo(l->cb.ar_result);
            delete l;
        }
        throw Error("OCSP responder " + uri + ": resolving " + host + " timed out");
    }
    std::vector<std::string> out;
    if (rc == 0) {
        for (addrinfo* a = l->cb.ar_result; a; a = a->ai_next) {
            char text[INET6_ADDRSTRLEN] = {};
            const void* addr = a->ai_family == AF_INET6
                                   ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr)
                                   : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr);
            if (::inet_ntop(a->ai_family, addr, text, sizeof text))
                out.emplace_back(text);
        }
        ::freeaddrinfo(l->cb.ar_result);
    }
    delete l;
    if (rc != 0)
        throw Error("OCSP responder " + uri + ": cannot resolve " + host + ": " + ::gai_strerror(rc));
    return out;
}

} // namespace

Bytes post_ocsp_request(const std::string& uri, const Bytes& request, Clock::time_point deadline, apr_pool_t* parent)
{
    SubPool pool(parent);
    apr_uri_t u{};
    if (apr_uri_parse(pool.p, uri.c_str(), &u) != APR_SUCCESS || !u.scheme || !u.hostname)
        throw Error("OCSP responder " + uri + ": not a URI");
    if (std::strcmp(u.scheme, "http") != 0)
        throw Error("OCSP responder " + uri + ": only http:// responders are supported");
    std::string host = u.hostname;
    std::string port = u.port_str ? u.port_str : "80";
    std::string path = u.path ? u.path : "/";
    if (u.query)
        path += std::string("?") + u.query;
    std::string head = ocsp_post_head(host, port, path, request.size());
    std::string out = head;
    out.append(request.begin(), request.end());
    apr_port_t port_number = u.port ? u.port : 80;

    std::string last_error = "no address";
    for (const std::string& address : resolve(host, uri, deadline)) {
        apr_sockaddr_t* sa = nullptr;
        // A numeric address: no lookup here.
        if (apr_status_t rv = apr_sockaddr_info_get(&sa, address.c_str(), APR_UNSPEC, port_number, 0, pool.p);
            rv != APR_SUCCESS) {
            last_error = apr_error(rv);
            continue;
        }
        apr_socket_t* sock = nullptr;
        if (apr_status_t rv = apr_socket_create(&sock, sa->family, SOCK_STREAM, APR_PROTO_TCP, pool.p);
            rv != APR_SUCCESS) {
            last_error = apr_error(rv);
            continue;
        }
        auto step = [&](const char* what) {
            apr_interval_time_t us = left(deadline);
            if (us == 0)
                throw Error("OCSP responder " + uri + ": timed out before " + what);
            apr_socket_timeout_set(sock, us);
        };
        step("connecting");
        if (apr_status_t rv = apr_socket_connect(sock, sa); rv != APR_SUCCESS) {
            last_error = APR_STATUS_IS_TIMEUP(rv) ? "connecting timed out" : apr_error(rv);
            apr_socket_close(sock);
            continue;
        }
        for (std::size_t sent = 0; sent < out.size();) {
            step("sending the request");
            apr_size_t n = out.size() - sent;
            apr_status_t rv = apr_socket_send(sock, out.data() + sent, &n);
            if (rv != APR_SUCCESS && n == 0) {
                apr_socket_close(sock);
                throw Error("OCSP responder " + uri + ": sending the request failed: " +
                            (APR_STATUS_IS_TIMEUP(rv) ? std::string("timed out") : apr_error(rv)));
            }
            sent += n;
        }
        std::string reply;
        char buf[4096];
        for (;;) {
            if (auto body = ocsp_reply_body(reply, false, uri)) {
                apr_socket_close(sock);
                return *body;
            }
            step("the response was complete");
            apr_size_t n = sizeof buf;
            apr_status_t rv = apr_socket_recv(sock, buf, &n);
            reply.append(buf, n);
            if (APR_STATUS_IS_EOF(rv) || (rv == APR_SUCCESS && n == 0)) {
                apr_socket_close(sock);
                auto body = ocsp_reply_body(reply, true, uri);
                return *body; // with eof, a body or an exception
            }
            if (rv != APR_SUCCESS && n == 0) {
                apr_socket_close(sock);
                throw Error("OCSP responder " + uri + ": " +
                            (APR_STATUS_IS_TIMEUP(rv) ? std::string("no complete response in time")
                                                      : apr_error(rv)));
            }
        }
    }
    throw Error("OCSP responder " + uri + ": cannot connect: " + last_error);
}

} // namespace mgs::httpd

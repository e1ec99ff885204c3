// The OCSP responder's HTTP reply (src/ocsp_http_reply.h), as
// httpd/ocsp_fetch.cpp reads it: ocsp_reply_body() on what has arrived so
// far, after each piece, until it gives a body; at EOF it must give a body
// or throw. The first input byte picks where the pieces end. mgs::Error is
// how a reply is refused. Invariants: the body is the bytes right after
// the head, no more than the limit, and a body found early is the one the
// whole reply gives.
#include "src/ocsp_http_reply.h"

#include "keystore/error.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace {

const std::string uri = "http://ocsp.example/";

std::optional<mgs::Bytes> body_of(std::string_view reply, bool eof, bool& threw)
{
    threw = false;
    try {
        std::optional<mgs::Bytes> body = mgs::ocsp_reply_body(reply, eof, uri);
        if (eof && !body)
            std::abort(); // the caller dereferences it
        if (body) {
            std::size_t head_end = reply.find("\r\n\r\n");
            if (head_end == std::string_view::npos || body->size() > mgs::max_ocsp_http_reply ||
                body->size() > reply.size() - head_end - 4 ||
                std::string_view(reinterpret_cast<const char*>(body->data()), body->size()) !=
                    reply.substr(head_end + 4, body->size()))
                std::abort();
        }
        return body;
    } catch (const mgs::Error&) {
        threw = true;
        return std::nullopt;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    std::size_t step = std::size_t{data[0]} + 1; // bytes per recv()
    std::string_view all(reinterpret_cast<const char*>(data + 1), size - 1);
    bool threw = false;

    // As the fetch loop: pieces until a body (or a refusal), then EOF.
    std::optional<mgs::Bytes> early;
    std::size_t got = 0;
    for (;;) {
        early = body_of(all.substr(0, got), false, threw);
        if (early || threw || got == all.size())
            break;
        got = std::min(all.size(), got + step);
    }
    if (!early && !threw)
        body_of(all, true, threw);

    // A body found early stays the body of the whole reply (the same
    // head), unless the whole is over the size limit.
    if (early && all.size() <= mgs::max_ocsp_http_reply) {
        std::optional<mgs::Bytes> whole = body_of(all, false, threw);
        if (!whole || *whole != *early)
            std::abort();
    }
    return 0;
}

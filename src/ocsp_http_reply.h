// The HTTP side of an OCSP fetch that is pure parsing: the request head
// for a POST, and the reply read so far -> the body once it is complete.
// No I/O here (httpd/ocsp_fetch.cpp does the sockets), so it can be tested
// and fuzzed on arbitrary bytes.
#pragma once

#include "keystore/bytes.h"

#include <optional>
#include <string>
#include <string_view>

namespace mgs {

// Largest reply accepted (head and body).
inline constexpr std::size_t max_ocsp_http_reply = 1024 * 1024;

// "POST path HTTP/1.0" with Host, Content-Type, Accept, Content-Length and
// Connection: close, followed by nothing (the body is sent after it).
std::string ocsp_post_head(const std::string& host, const std::string& port, const std::string& path,
                           std::size_t body_size);

// `reply`: all bytes received so far; `eof`: the responder closed. Returns
// the body once it is complete (Content-Length reached, or EOF without one),
// std::nullopt if more is needed. Throws mgs::Error (naming `uri`) for a
// reply that is not HTTP, not 200, too large, or cut short.
std::optional<Bytes> ocsp_reply_body(std::string_view reply, bool eof, const std::string& uri);

} // namespace mgs

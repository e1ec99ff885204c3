#include "src/ocsp_http_reply.h"

#include "keystore/error.h"

#include <cctype>
#include <charconv>

namespace mgs {

std::string ocsp_post_head(const std::string& host, const std::string& port, const std::string& path,
                           std::size_t body_size)
{
    std::string authority = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port != "80")
        authority += ":" + port;
    return "POST " + (path.empty() ? std::string("/") : path) + " HTTP/1.0\r\nHost: " + authority +
           "\r\nContent-Type: application/ocsp-request\r\nAccept: application/ocsp-response\r\n"
           "Content-Length: " +
           std::to_string(body_size) + "\r\nConnection: close\r\n\r\n";
}

namespace {

// The value of Content-Length in `head` (lines after the status line), if any.
std::optional<std::size_t> content_length(std::string_view head, const std::string& uri)
{
    std::optional<std::size_t> found;
    std::size_t at = head.find("\r\n");
    while (at != std::string_view::npos && at + 2 <= head.size()) {
        std::size_t start = at + 2;
        std::size_t end = head.find("\r\n", start);
        std::string_view line = head.substr(start, end == std::string_view::npos ? head.size() - start : end - start);
        constexpr std::string_view name = "content-length:";
        if (line.size() >= name.size()) {
            bool match = true;
            for (std::size_t i = 0; i < name.size() && match; ++i)
                match = std::tolower(static_cast<unsigned char>(line[i])) == name[i];
            if (match) {
                std::string_view v = line.substr(name.size());
                while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
                    v.remove_prefix(1);
                while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
                    v.remove_suffix(1);
                std::size_t n = 0;
                auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
                if (ec != std::errc() || p != v.data() + v.size() || (found && *found != n))
                    throw Error("OCSP responder " + uri + ": bad Content-Length");
                found = n;
            }
        }
        at = end;
    }
    return found;
}

} // namespace

std::optional<Bytes> ocsp_reply_body(std::string_view reply, bool eof, const std::string& uri)
{
    if (reply.size() > max_ocsp_http_reply)
        throw Error("OCSP responder " + uri + ": response too large");
    std::size_t head_end = reply.find("\r\n\r\n");
    if (head_end == std::string_view::npos) {
        if (eof)
            throw Error("OCSP responder " + uri + ": not an HTTP response");
        return std::nullopt;
    }
    if (reply.size() < 12 || reply.substr(0, 7) != "HTTP/1." || reply[8] != ' ')
        throw Error("OCSP responder " + uri + ": not an HTTP response");
    std::string_view status = reply.substr(9, 3);
    if (status != "200") {
        std::size_t line_end = reply.find("\r\n");
        throw Error("OCSP responder " + uri + ": HTTP status " + std::string(reply.substr(9, line_end - 9)));
    }
    std::optional<std::size_t> length = content_length(reply.substr(0, head_end), uri);
    std::string_view body = reply.substr(head_end + 4);
    if (length) {
        if (*length > max_ocsp_http_reply)
            throw Error("OCSP responder " + uri + ": response too large");
        if (body.size() >= *length) // responders may keep the connection open
            return Bytes(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(*length));
        if (eof)
            throw Error("OCSP responder " + uri + ": response cut short");
        return std::nullopt;
    }
    if (!eof)
        return std::nullopt;
    return Bytes(body.begin(), body.end());
}

} // namespace mgs

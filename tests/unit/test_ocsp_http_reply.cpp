// The OCSP fetch's HTTP reply parsing, on bytes (no sockets).
#include "keystore/error.h"
#include "src/ocsp_http_reply.h"

#include <gtest/gtest.h>

namespace mgs::test {
namespace {

const std::string uri = "http://ocsp.example/";

std::string body_of(const std::optional<Bytes>& b) { return b ? std::string(b->begin(), b->end()) : "<more>"; }

TEST(OcspHttpReply, BodyByContentLengthEvenIfTheConnectionStaysOpen)
{
    std::string r = "HTTP/1.1 200 OK\r\ncontent-LENGTH: 5\r\n\r\nhello";
    EXPECT_EQ(body_of(ocsp_reply_body(r, false, uri)), "hello");
    EXPECT_EQ(body_of(ocsp_reply_body(r + "trailing", false, uri)), "hello");
}

TEST(OcspHttpReply, WaitsForMore)
{
    EXPECT_EQ(body_of(ocsp_reply_body("", false, uri)), "<more>");
    EXPECT_EQ(body_of(ocsp_reply_body("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n", false, uri)), "<more>");
    EXPECT_EQ(body_of(ocsp_reply_body("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhel", false, uri)), "<more>");
    // Without a length the body ends at EOF.
    EXPECT_EQ(body_of(ocsp_reply_body("HTTP/1.0 200 OK\r\n\r\nabc", false, uri)), "<more>");
    EXPECT_EQ(body_of(ocsp_reply_body("HTTP/1.0 200 OK\r\n\r\nabc", true, uri)), "abc");
}

TEST(OcspHttpReply, RefusesWhatIsNotA200Reply)
{
    EXPECT_THROW(ocsp_reply_body("garbage\r\n\r\n", false, uri), Error);
    EXPECT_THROW(ocsp_reply_body("HTTP/1.0 200", true, uri), Error); // cut short
    EXPECT_THROW(ocsp_reply_body("HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nabc", true, uri), Error);
    EXPECT_THROW(ocsp_reply_body("HTTP/1.0 200 OK\r\nContent-Length: x\r\n\r\n", false, uri), Error);
    EXPECT_THROW(ocsp_reply_body("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", false, uri),
                 Error);
    EXPECT_THROW(ocsp_reply_body("HTTP/1.0 200 OK\r\nContent-Length: 99999999999\r\n\r\n", false, uri), Error);
    try {
        ocsp_reply_body("HTTP/1.1 503 Service Unavailable\r\n\r\n", false, uri);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("HTTP status 503 Service Unavailable"), std::string::npos) << e.what();
    }
    EXPECT_THROW(ocsp_reply_body(std::string(max_ocsp_http_reply + 1, 'x'), false, uri), Error);
}

TEST(OcspHttpReply, RequestHead)
{
    EXPECT_EQ(ocsp_post_head("ocsp.example", "80", "/", 10),
              "POST / HTTP/1.0\r\nHost: ocsp.example\r\nContent-Type: application/ocsp-request\r\n"
              "Accept: application/ocsp-response\r\nContent-Length: 10\r\nConnection: close\r\n\r\n");
    EXPECT_NE(ocsp_post_head("::1", "8080", "/x", 1).find("Host: [::1]:8080\r\n"), std::string::npos);
}

} // namespace
} // namespace mgs::test

// The bytes under a TLS session, as Apache delivers them: ciphertext is read
// from the next input filter and written to the next output filter in
// bucket brigades, so the TLS filters sit in Apache's filter chain rather
// than on the socket.
#pragma once

#include "httpd/apache.h"
#include "src/tls_connection.h"

#include <string_view>

namespace mgs::httpd {

class BrigadeTransport final : public Transport {
public:
    explicit BrigadeTransport(conn_rec* c);

    void attach(ap_filter_t* input, ap_filter_t* output)
    {
        input_ = input;
        output_ = output;
    }
    // Only a server listens for plain HTTP on its TLS port.
    void ignore_plain_http() { first_read_ = false; }
    // How reads below the TLS layer block, set by the input filter per call.
    void set_block(apr_read_type_e block) { block_ = block; }

    ssize_t pull(std::span<std::uint8_t> buf) noexcept override;
    ssize_t push(std::span<const std::uint8_t> buf) noexcept override;
    int wait_readable(unsigned ms) noexcept override;

    // Sends what TLS wrote so far to the network (with a FLUSH if asked).
    apr_status_t pass_output(bool flush);
    // Queues already-encoded bytes (or a metadata bucket) for the network.
    void queue_bucket(apr_bucket* b)
    {
        if (b->length != static_cast<apr_size_t>(-1))
            queued_ += static_cast<apr_off_t>(b->length);
        APR_BRIGADE_INSERT_TAIL(out_bb_, b);
    }
    // Bytes waiting for pass_output (kept as a count: asked per record).
    apr_off_t queued_bytes() const { return queued_; }

    // Why the last pull failed, in APR's terms (APR_TIMEUP, APR_EOF, ...).
    apr_status_t last_status() const { return last_status_; }
    bool saw_plain_http() const { return plain_http_; }
    bool would_block() const { return would_block_; }
    // Nothing at all arrived: a port probe or health check, not a client.
    bool received_nothing() const { return first_read_; }

private:
    apr_status_t fill(apr_read_type_e block, apr_off_t want);

    conn_rec* c_;
    ap_filter_t* input_ = nullptr;
    ap_filter_t* output_ = nullptr;
    apr_bucket_brigade* in_bb_;
    apr_bucket_brigade* out_bb_;
    apr_read_type_e block_ = APR_BLOCK_READ;
    apr_status_t last_status_ = APR_SUCCESS;
    bool first_read_ = true;
    bool plain_http_ = false;
    bool would_block_ = false;
    apr_off_t queued_ = 0;
};

} // namespace mgs::httpd

#include "httpd/brigade_transport.h"

#include "src/plain_http.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mgs::httpd {

BrigadeTransport::BrigadeTransport(conn_rec* c)
    : c_(c), in_bb_(apr_brigade_create(c->pool, c->bucket_alloc)), out_bb_(apr_brigade_create(c->pool, c->bucket_alloc))
{
}

apr_status_t BrigadeTransport::fill(apr_read_type_e block, apr_off_t want)
{
    return ap_get_brigade(input_->next, in_bb_, AP_MODE_READBYTES, block, std::max<apr_off_t>(want, AP_IOBUFSIZE));
}

ssize_t BrigadeTransport::pull(std::span<std::uint8_t> buf) noexcept
{
    would_block_ = false;
    // GnuTLS may now wait for the peer's answer to what it just wrote.
    if (!APR_BRIGADE_EMPTY(out_bb_)) {
        if (apr_status_t rv = pass_output(true); rv != APR_SUCCESS) {
            last_status_ = rv;
            errno = EPIPE;
            return -1;
        }
    }
    if (APR_BRIGADE_EMPTY(in_bb_)) {
        apr_status_t rv = fill(block_, static_cast<apr_off_t>(buf.size()));
        if (APR_STATUS_IS_EAGAIN(rv) || (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(in_bb_) && block_ == APR_NONBLOCK_READ)) {
            would_block_ = true;
            errno = EAGAIN;
            return -1;
        }
        if (rv == APR_EOF || (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(in_bb_))) {
            last_status_ = APR_EOF;
            return 0;
        }
        if (rv != APR_SUCCESS) {
            last_status_ = rv;
            errno = ECONNRESET;
            return -1;
        }
    }

    std::size_t copied = 0;
    while (copied < buf.size() && !APR_BRIGADE_EMPTY(in_bb_)) {
        apr_bucket* e = APR_BRIGADE_FIRST(in_bb_);
        if (APR_BUCKET_IS_EOS(e)) {
            if (copied == 0) {
                last_status_ = APR_EOF;
                return 0;
            }
            break;
        }
        const char* data = nullptr;
        apr_size_t len = 0;
        if (apr_status_t rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ); rv != APR_SUCCESS) {
            last_status_ = rv;
            errno = EIO;
            return copied ? static_cast<ssize_t>(copied) : -1;
        }
        std::size_t take = std::min<std::size_t>(len, buf.size() - copied);
        std::memcpy(buf.data() + copied, data, take);
        copied += take;
        if (take < len)
            apr_bucket_split(e, take);
        apr_bucket_delete(e);
    }

    if (first_read_ && copied > 0) {
        first_read_ = false;
        if (looks_like_plain_http(buf.first(copied))) {
            plain_http_ = true;
            errno = EPROTO;
            return -1;
        }
    }
    return static_cast<ssize_t>(copied);
}

ssize_t BrigadeTransport::push(std::span<const std::uint8_t> buf) noexcept
{
    // Copied: GnuTLS reuses its buffer as soon as we return.
    APR_BRIGADE_INSERT_TAIL(out_bb_, apr_bucket_heap_create(reinterpret_cast<const char*>(buf.data()), buf.size(),
                                                            nullptr, c_->bucket_alloc));
    queued_ += static_cast<apr_off_t>(buf.size());
    return static_cast<ssize_t>(buf.size());
}

int BrigadeTransport::wait_readable(unsigned ms) noexcept
{
    if (!APR_BRIGADE_EMPTY(in_bb_))
        return 1;
    if (ms != 0)
        return 1; // the blocking pull waits, bounded by Apache's Timeout
    apr_status_t rv = fill(APR_NONBLOCK_READ, 1);
    return rv == APR_SUCCESS && !APR_BRIGADE_EMPTY(in_bb_) ? 1 : 0;
}

apr_status_t BrigadeTransport::pass_output(bool flush)
{
    if (flush)
        APR_BRIGADE_INSERT_TAIL(out_bb_, apr_bucket_flush_create(c_->bucket_alloc));
    if (APR_BRIGADE_EMPTY(out_bb_))
        return APR_SUCCESS;
    apr_status_t rv = ap_pass_brigade(output_->next, out_bb_);
    apr_brigade_cleanup(out_bb_);
    queued_ = 0;
    return rv;
}

} // namespace mgs::httpd

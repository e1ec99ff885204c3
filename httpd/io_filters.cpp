#include "httpd/io_filters.h"
#include "httpd/errors.h"

#include "httpd/connection.h"

#include "src/line_splitter.h"

#include <algorithm>

APLOG_USE_MODULE(gnutls);

namespace mgs::httpd {

namespace {

constexpr std::size_t record_plaintext_max = 16384;
// Output is handed to the network in batches of about this size.
constexpr apr_off_t output_batch = 64 * 1024;

// Appends the next decrypted record to st.plain.
apr_status_t read_more_plain(ConnState& st, apr_read_type_e block)
{
    if (st.phase == Phase::plain_http)
        return APR_EOF; // after the stand-in request line: no TLS to read
    st.transport.set_block(block);
    for (int retries = 0;;) {
        ssize_t n = st.tls.recv(st.plain.reserve(record_plaintext_max));
        if (n > 0) {
            st.plain.commit(static_cast<std::size_t>(n));
            if (st.tls.is_client() && !st.backend_session_saved)
                st.save_backend_session(); // a TLS 1.3 ticket comes after the handshake
            if (st.transport.queued_bytes() > 0) // e.g. a KeyUpdate answer
                st.transport.pass_output(true);
            return APR_SUCCESS;
        }
        if (n == 0)
            return APR_EOF; // close_notify
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            if (st.transport.would_block() && block == APR_NONBLOCK_READ)
                return APR_EAGAIN;
            if (++retries < 100)
                continue;
        } else if (n == GNUTLS_E_REHANDSHAKE) {
            // TLS 1.2 renegotiation is not offered: say so and carry on.
            gnutls_alert_send(st.tls.session(), GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
            st.transport.pass_output(true);
            continue;
        } else if (!gnutls_error_is_fatal(static_cast<int>(n))) {
            continue;
        }
        apr_status_t why = st.transport.last_status();
        st.phase = Phase::failed;
        if (why == APR_EOF || n == GNUTLS_E_PREMATURE_TERMINATION)
            return APR_EOF; // the client hung up without close_notify: common, harmless
        if (why != APR_SUCCESS)
            return why;
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, st.c, "mod_gnutls: TLS connection failed: %s",
                      st.tls.describe_failure(static_cast<int>(n)).c_str());
        return APR_ECONNABORTED;
    }
}

// Decrypts the next record(s) into st.plain, which holds no memory while
// it holds no bytes.
apr_status_t read_plain(ConnState& st, apr_read_type_e block)
{
    apr_status_t rv = read_more_plain(st, block);
    if (rv != APR_SUCCESS)
        st.plain.release_if_empty();
    return rv;
}

apr_status_t deliver(ConnState& st, apr_bucket_brigade* bb, ap_input_mode_t mode, apr_read_type_e block,
                     apr_off_t readbytes)
{
    std::size_t len = 0;
    if (mode == AP_MODE_GETLINE) {
        // A whole line if we can, as the core filter would give; without a
        // '\n', what is buffered once it reaches HUGE_STRING_LEN, the most
        // the protocol code asks for at once (src/line_splitter.h).
        apr_status_t rv = APR_SUCCESS;
        len = next_line(st.plain, HUGE_STRING_LEN, [&] {
            rv = read_plain(st, block);
            if (rv == APR_SUCCESS)
                return ReadOutcome::appended;
            return APR_STATUS_IS_EAGAIN(rv) || rv == APR_EOF ? ReadOutcome::ended : ReadOutcome::failed;
        });
        if (len == 0)
            return rv;
    } else {
        if (st.plain.avail() == 0)
            if (apr_status_t rv = read_plain(st, block); rv != APR_SUCCESS)
                return rv;
        std::size_t want = readbytes > 0 ? static_cast<std::size_t>(readbytes) : AP_IOBUFSIZE;
        len = std::min(st.plain.avail(), want);
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_heap_create(st.plain.begin(), len, nullptr, st.c->bucket_alloc));
    if (mode != AP_MODE_SPECULATIVE)
        st.plain.consume(len);
    return APR_SUCCESS;
}

apr_status_t encrypt_bucket(ConnState& st, apr_bucket* e)
{
    const char* data = nullptr;
    apr_size_t len = 0;
    if (apr_status_t rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ); rv != APR_SUCCESS)
        return rv;
    while (len > 0) {
        ssize_t n = st.tls.send({reinterpret_cast<const std::uint8_t*>(data), len});
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue; // our push never blocks; GnuTLS retries the record
        if (n < 0) {
            ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, st.c, "mod_gnutls: TLS send failed: %s",
                          st.tls.describe_failure(static_cast<int>(n)).c_str());
            st.phase = Phase::failed;
            return APR_ECONNABORTED;
        }
        data += n;
        len -= static_cast<apr_size_t>(n);
        // A file bucket reads as one mapping of up to 4 MiB: hand the
        // records to the network as they are made, not all 256 of them at
        // the end (4 MiB of fresh copies, out of the cache, per mapping).
        if (len > 0 && st.transport.queued_bytes() >= output_batch)
            if (apr_status_t rv = st.transport.pass_output(false); rv != APR_SUCCESS)
                return rv;
    }
    return APR_SUCCESS;
}

} // namespace

apr_status_t input_filter(ap_filter_t* f, apr_bucket_brigade* bb, ap_input_mode_t mode, apr_read_type_e block,
                          apr_off_t readbytes)
{
    auto* st = static_cast<ConnState*>(f->ctx);
    try {
        if (apr_status_t rv = st->ensure_handshake(block); rv != APR_SUCCESS)
            return rv;
        if (mode == AP_MODE_INIT)
            return APR_SUCCESS;
        if (mode != AP_MODE_READBYTES && mode != AP_MODE_GETLINE && mode != AP_MODE_SPECULATIVE)
            return APR_ENOTIMPL;
        return deliver(*st, bb, mode, block, readbytes);
    } catch (const std::exception& e) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, f->c, "mod_gnutls: " MGSLOGNO(01501) "input filter: %s", e.what());
        st->phase = Phase::failed;
        return APR_EGENERAL;
    }
}

apr_status_t output_filter(ap_filter_t* f, apr_bucket_brigade* bb)
{
    auto* st = static_cast<ConnState*>(f->ctx);
    try {
        if (st->phase == Phase::handshake)
            if (apr_status_t rv = st->ensure_handshake(APR_BLOCK_READ); rv != APR_SUCCESS && rv != APR_EOF) {
                apr_brigade_cleanup(bb);
                // A back end that failed its handshake is reported when
                // mod_proxy reads its answer: the client gets mod_proxy's
                // "502 Proxy Error" page, as with mod_ssl and mod_gnutls.
                // Only this write is swallowed; later ones fail.
                return st->tls.is_client() && st->phase == Phase::failed ? APR_SUCCESS : rv;
            }
        if (st->phase == Phase::plain_http) {
            // Apache's 400 for a plain-HTTP client, in the clear.
            while (!APR_BRIGADE_EMPTY(bb)) {
                apr_bucket* e = APR_BRIGADE_FIRST(bb);
                APR_BUCKET_REMOVE(e);
                st->transport.queue_bucket(e);
            }
            return st->transport.pass_output(true);
        }
        if (st->phase != Phase::open) {
            // Nothing more can reach this peer (Apache may still try to
            // send an error page for the request it could not read).
            apr_brigade_cleanup(bb);
            return st->phase == Phase::failed ? APR_ECONNABORTED : APR_SUCCESS;
        }
        while (!APR_BRIGADE_EMPTY(bb)) {
            apr_bucket* e = APR_BRIGADE_FIRST(bb);
            if (AP_BUCKET_IS_EOC(e)) {
                st->tls.close_notify(); // best effort: the connection ends either way
                // The core output filter holds back small writes unless
                // flushed; the alert must leave before the socket closes.
                if (apr_status_t rv = st->transport.pass_output(true); rv != APR_SUCCESS) {
                    apr_brigade_cleanup(bb);
                    return rv;
                }
                st->phase = Phase::closed; // nothing may follow close_notify
                APR_BUCKET_REMOVE(e);
                st->transport.queue_bucket(e);
                continue;
            }
            if (APR_BUCKET_IS_FLUSH(e)) {
                apr_bucket_delete(e);
                if (apr_status_t rv = st->transport.pass_output(true); rv != APR_SUCCESS)
                    return rv;
                continue;
            }
            if (APR_BUCKET_IS_METADATA(e)) {
                APR_BUCKET_REMOVE(e);
                st->transport.queue_bucket(e);
                continue;
            }
            if (apr_status_t rv = encrypt_bucket(*st, e); rv != APR_SUCCESS) {
                apr_brigade_cleanup(bb);
                return rv;
            }
            apr_bucket_delete(e);
            if (st->transport.queued_bytes() >= output_batch)
                if (apr_status_t rv = st->transport.pass_output(false); rv != APR_SUCCESS)
                    return rv;
        }
        return st->transport.pass_output(false);
    } catch (const std::exception& e) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, f->c, "mod_gnutls: " MGSLOGNO(01502) "output filter: %s", e.what());
        st->phase = Phase::failed;
        if (st->tls.is_client())
            f->c->aborted = 1; // mod_proxy answers 502 for an aborted back end
        apr_brigade_cleanup(bb);
        return APR_EGENERAL;
    }
}

} // namespace mgs::httpd

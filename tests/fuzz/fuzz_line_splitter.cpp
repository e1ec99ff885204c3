// The input filter's GETLINE buffering (src/line_splitter.h on a real
// src/plain_buffer.h), statefully: the input is a sequence of steps, each
// led by one control byte:
//   c & 0x03 == 0: a record arrives (into an empty buffer, as READBYTES
//                  reads, or when a GETLINE asks): (c >> 2) selects its
//                  length (below), its bytes follow in the input;
//             1:   the read would block (EAGAIN / EOF: "ended");
//             2:   the read fails;
//             3:   the web server reads: (c >> 2) & 3 picks GETLINE (0, 1),
//                  READBYTES (2, with the next byte as the amount) or
//                  SPECULATIVE (3), as deliver() does them.
// A read that needs a record takes the next step as the read's outcome. Invariants:
// every piece handed on is a line (exactly one '\n', at its end), or holds
// no '\n' and is at least `max` long (and no longer than the record that
// made it so allows), or is what was buffered when the read ended; nothing
// is handed on that was not fed, and everything fed comes out, in order.
#include "src/line_splitter.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// Small, to reach the limit often, and the real one.
constexpr std::size_t maxes[] = {8192, 16, 1};
constexpr std::size_t record_max = 16384; // as io_filters.cpp reserves

class Run {
public:
    Run(const std::uint8_t* data, std::size_t size, std::size_t max) : p_(data), end_(data + size), max_(max) {}

    void go()
    {
        while (p_ < end_) {
            std::uint8_t c = *p_++;
            switch (c & 3) {
            case 0: // what a READBYTES or SPECULATIVE read brings: only into
                    // an empty buffer (deliver() reads only then)
                if (buf_.avail() == 0)
                    arrive(c >> 2);
                else
                    p_ += record_length(c >> 2);
                break;
            case 1: // nothing to read now: a GETLINE would hand on what is there
            case 2: break; // likewise, failing: nothing changes
            case 3: serve(c >> 2); break;
            }
        }
        // Drain: the connection ends (EOF).
        last_record_ = 0;
        for (;;) {
            std::size_t len = mgs::next_line(buf_, max_, [] { return mgs::ReadOutcome::ended; });
            if (len == 0)
                break;
            check_piece(len, Piece::final_part);
            hand_on(len);
        }
        if (buf_.avail() != 0 || out_ != fed_)
            std::abort();
    }

private:
    enum class Piece { line_or_full, final_part };

    std::size_t record_length(unsigned sel)
    {
        std::size_t left = static_cast<std::size_t>(end_ - p_);
        std::size_t n;
        if (sel < 48)
            n = sel; // 0..47
        else if (sel < 56)
            n = (sel - 47) * 64; // up to 576
        else if (sel < 62)
            n = (sel - 55) * 1500; // up to 9000
        else
            n = record_max; // a full record
        return std::min(n, left);
    }

    void arrive(unsigned sel)
    {
        std::size_t n = record_length(sel);
        if (n == 0)
            return; // an empty record is never appended (read_plain: n > 0)
        auto room = buf_.reserve(record_max);
        if (room.size() < record_max)
            std::abort();
        std::memcpy(room.data(), p_, n);
        buf_.commit(n);
        fed_.append(reinterpret_cast<const char*>(p_), n);
        p_ += n;
        last_record_ = n;
    }

    // The next step, as the outcome of a read that GETLINE asked for.
    mgs::ReadOutcome read_more()
    {
        ++reads_;
        if (p_ >= end_)
            return mgs::ReadOutcome::ended;
        std::uint8_t c = *p_++;
        switch (c & 3) {
        case 0:
            if (record_length(c >> 2) == 0)
                return mgs::ReadOutcome::ended; // nothing came: as EAGAIN
            arrive(c >> 2);
            return mgs::ReadOutcome::appended;
        case 2: return mgs::ReadOutcome::failed;
        default: return mgs::ReadOutcome::ended;
        }
    }

    void serve(unsigned how)
    {
        switch (how & 3) {
        case 0:
        case 1: {
            std::size_t before = buf_.avail();
            last_record_ = 0;
            reads_ = 0;
            bool ended = false, failed = false;
            std::size_t len = mgs::next_line(buf_, max_, [&] {
                mgs::ReadOutcome o = read_more();
                ended = o == mgs::ReadOutcome::ended;
                failed = o == mgs::ReadOutcome::failed;
                return o;
            });
            if (len == 0) {
                // Only a failed read, or one that ended with nothing buffered.
                if (!failed && !(ended && buf_.avail() == 0))
                    std::abort();
                return;
            }
            if (failed)
                std::abort();
            if (reads_ == 0 && before == 0)
                std::abort();
            check_piece(len, ended ? Piece::final_part : Piece::line_or_full);
            hand_on(len);
            break;
        }
        case 2: { // READBYTES of up to the next byte + 1
            std::size_t want = p_ < end_ ? std::size_t{*p_++} + 1 : 1;
            last_record_ = 0;
            if (buf_.avail() == 0 && read_more() != mgs::ReadOutcome::appended)
                return; // deliver() returns the read's status
            std::size_t len = std::min(buf_.avail(), want);
            if (len == 0)
                std::abort();
            hand_on(len);
            break;
        }
        case 3: // SPECULATIVE: reads into an empty buffer, looks, does not consume
            last_record_ = 0;
            if (buf_.avail() == 0 && read_more() != mgs::ReadOutcome::appended)
                return;
            if (buf_.avail() == 0 || std::memcmp(buf_.begin(), fed_.data() + out_.size(), buf_.avail()) != 0)
                std::abort();
            break;
        }
    }

    void check_piece(std::size_t len, Piece kind)
    {
        if (len > buf_.avail())
            std::abort();
        const char* s = buf_.begin();
        const void* lf = std::memchr(s, '\n', len);
        if (lf) {
            // A line: its only '\n' is its last byte.
            if (static_cast<const char*>(lf) != s + len - 1)
                std::abort();
            // And it could not have been handed on with fewer reads: what
            // preceded the last record was shorter than max.
            if (last_record_ > 0 && len > max_ - 1 + last_record_)
                std::abort();
            return;
        }
        if (kind == Piece::final_part) {
            if (len != buf_.avail()) // all that was buffered
                std::abort();
            return;
        }
        if (len < max_ || len != buf_.avail())
            std::abort();
        if (last_record_ > 0 && len > max_ - 1 + last_record_)
            std::abort();
    }

    void hand_on(std::size_t len)
    {
        if (len > buf_.avail())
            std::abort();
        out_.append(buf_.begin(), len);
        buf_.consume(len);
        if (out_.size() > fed_.size() || std::memcmp(out_.data(), fed_.data(), out_.size()) != 0)
            std::abort();
    }

    const std::uint8_t* p_;
    const std::uint8_t* end_;
    std::size_t max_;
    mgs::PlainBuffer buf_;
    std::string fed_, out_;
    std::size_t last_record_ = 0;
    int reads_ = 0;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    // The first byte picks the limit; the rest are the steps.
    Run(data + 1, size - 1, maxes[data[0] % 3]).go();
    return 0;
}

// What the input filter hands on for AP_MODE_GETLINE, without Apache types:
// a whole line if one is buffered (through its '\n'), as the core input
// filter would give; everything buffered once `max` bytes (HUGE_STRING_LEN,
// the most the protocol code asks for at once) hold no '\n'; otherwise
// another record is read first. When no record can be had now (EAGAIN, EOF)
// what is buffered goes as it is.
//
// As with the core filter (apr_brigade_split_line), a piece may be longer
// than `max`: the record that completed it is not split. Apache's
// ap_rgetline() enforces its own limits (LimitRequestLine, ...).
#pragma once

#include "src/plain_buffer.h"

#include <cstddef>
#include <span>

namespace mgs {

// The length of the piece to hand on from `buffered`, or 0 if another
// record should be read first. `max` > 0.
std::size_t getline_length(std::span<const char> buffered, std::size_t max);

// What one attempt to append a record to the buffer did.
enum class ReadOutcome {
    appended, // at least one byte more is buffered
    ended,    // nothing now (would block, or end of stream): hand on what is there
    failed,   // an error the caller returns as it is
};

// The GETLINE loop: reads with `read_more()` (which appends to `buf` and
// says how it went) until getline_length() has a piece. Returns its length
// (not consumed: the caller hands it on, then consumes it), or 0 when the
// read's own result is to be returned: it failed, or ended with nothing
// buffered.
template <class ReadMore>
std::size_t next_line(const PlainBuffer& buf, std::size_t max, ReadMore&& read_more)
{
    for (;;) {
        if (std::size_t len = getline_length({buf.begin(), buf.avail()}, max))
            return len;
        switch (read_more()) {
        case ReadOutcome::appended: continue;
        case ReadOutcome::ended: return buf.avail();
        case ReadOutcome::failed: return 0;
        }
        return 0;
    }
}

} // namespace mgs

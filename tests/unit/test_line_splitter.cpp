// The input filter's GETLINE logic (src/line_splitter.h) on a real
// PlainBuffer, with records arriving as a test script says.
#include "src/line_splitter.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

namespace mgs::test {
namespace {

constexpr std::size_t max = 8192; // HUGE_STRING_LEN

std::size_t line_of(std::string_view s) { return getline_length({s.data(), s.size()}, max); }

TEST(LineSplitter, LengthThroughTheFirstNewline)
{
    EXPECT_EQ(line_of("GET / HTTP/1.1\r\nHost: x\r\n"), 16u);
    EXPECT_EQ(line_of("\n"), 1u);
    EXPECT_EQ(line_of("\nabc"), 1u);
}

TEST(LineSplitter, WithoutNewlineReadsMoreUntilMax)
{
    EXPECT_EQ(line_of(""), 0u);
    EXPECT_EQ(line_of("GET / HTTP/1.1\r"), 0u);
    EXPECT_EQ(line_of(std::string(max - 1, 'a')), 0u);
    EXPECT_EQ(line_of(std::string(max, 'a')), max);
    // Everything buffered, not just `max`: the record is not split.
    EXPECT_EQ(line_of(std::string(max + 100, 'a')), max + 100);
    EXPECT_EQ(getline_length({}, max), 0u);
}

// Records to append, one per read; a record "" stands for EAGAIN (ended),
// and an exhausted script for a failed read.
struct Script {
    PlainBuffer& buf;
    std::deque<std::string> records;
    int reads = 0;

    ReadOutcome operator()()
    {
        ++reads;
        if (records.empty())
            return ReadOutcome::failed;
        std::string r = records.front();
        records.pop_front();
        if (r.empty())
            return ReadOutcome::ended;
        auto room = buf.reserve(16384);
        std::copy(r.begin(), r.end(), room.begin());
        buf.commit(r.size());
        return ReadOutcome::appended;
    }
};

std::string take(PlainBuffer& buf, std::size_t len)
{
    std::string out(buf.begin(), len);
    buf.consume(len);
    return out;
}

TEST(LineSplitter, ALineSplitAcrossRecordsComesWhole)
{
    PlainBuffer buf;
    Script read{buf, {"GET / HT", "TP/1.1\r", "\nHost: a\r\n\r\n"}};
    EXPECT_EQ(take(buf, next_line(buf, max, read)), "GET / HTTP/1.1\r\n");
    EXPECT_EQ(read.reads, 3);
    // The rest is buffered: no read for the next lines.
    EXPECT_EQ(take(buf, next_line(buf, max, read)), "Host: a\r\n");
    EXPECT_EQ(take(buf, next_line(buf, max, read)), "\r\n");
    EXPECT_EQ(read.reads, 3);
    EXPECT_EQ(buf.avail(), 0u);
}

TEST(LineSplitter, WouldBlockHandsOnWhatIsBuffered)
{
    PlainBuffer buf;
    Script read{buf, {"partial", ""}};
    EXPECT_EQ(take(buf, next_line(buf, max, read)), "partial");
    // Nothing buffered and the read ends: 0, the caller returns its status.
    Script again{buf, {""}};
    EXPECT_EQ(next_line(buf, max, again), 0u);
}

TEST(LineSplitter, AFailedReadIsReturnedEvenWithBytesBuffered)
{
    PlainBuffer buf;
    Script read{buf, {"partial"}}; // then failed
    EXPECT_EQ(next_line(buf, max, read), 0u);
    EXPECT_EQ(buf.avail(), 7u); // kept, as before the split
}

TEST(LineSplitter, LongLineWithoutNewlineGoesOnceMaxIsBuffered)
{
    PlainBuffer buf;
    Script read{buf, {std::string(5000, 'a'), std::string(5000, 'b'), "c\n"}};
    std::string piece = take(buf, next_line(buf, max, read));
    EXPECT_EQ(piece, std::string(5000, 'a') + std::string(5000, 'b'));
    EXPECT_EQ(read.reads, 2);
    EXPECT_EQ(take(buf, next_line(buf, max, read)), "c\n");
}

TEST(LineSplitter, NewlineBeyondMaxInOneRecordStaysWithItsLine)
{
    PlainBuffer buf;
    std::string record = std::string(9000, 'a') + "\nnext";
    Script read{buf, {record}};
    EXPECT_EQ(next_line(buf, max, read), 9001u);
}

} // namespace
} // namespace mgs::test

#include "keystore/file_io.h"

#include "keystore/error.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <string_view>
#include <unistd.h>

namespace mgs {

namespace {

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

std::string_view as_text(std::span<const std::uint8_t> data)
{
    return {reinterpret_cast<const char*>(data.data()), data.size()};
}

} // namespace

Bytes read_file(const std::string& path)
{
    // Key and PIN files pass through here: read straight into the result,
    // sized from fstat, and wipe every buffer left behind (a grown vector's
    // old storage, a partial read that fails), so no copy of the file
    // survives in freed memory or on the stack.
    constexpr std::size_t max_size = 16 * 1024 * 1024;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0)
        throw Error("cannot read " + path + ": " + std::strerror(errno));
    struct stat st {};
    std::size_t expected = ::fstat(fd.get(), &st) == 0 && st.st_size > 0 ? static_cast<std::size_t>(st.st_size) : 0;
    Bytes out(std::min(expected, max_size) + 1); // one more byte sees the end without growing
    std::size_t used = 0;
    auto fail = [&](const std::string& why) {
        explicit_bzero(out.data(), out.size());
        throw Error("cannot read " + path + ": " + why);
    };
    for (;;) {
        if (used == out.size()) {
            if (out.size() > max_size)
                fail("larger than 16 MiB, not a key or certificate file");
            Bytes bigger(out.size() * 2);
            std::memcpy(bigger.data(), out.data(), used);
            explicit_bzero(out.data(), out.size());
            out.swap(bigger);
        }
        ssize_t n = ::read(fd.get(), out.data() + used, out.size() - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail(std::strerror(errno));
        }
        if (n == 0)
            break;
        used += static_cast<std::size_t>(n);
    }
    if (used > max_size)
        fail("larger than 16 MiB, not a key or certificate file");
    out.resize(used); // shrinking keeps the storage: nothing is copied
    return out;
}

Bytes read_file_start(const std::string& path, std::size_t max)
{
    Bytes out(max);
    std::size_t used = 0;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    while (fd.get() >= 0 && used < max) {
        ssize_t n = ::read(fd.get(), out.data() + used, max - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += static_cast<std::size_t>(n);
    }
    out.resize(used); // shrinking keeps the storage: nothing is copied
    return out;
}

bool looks_like_pem(std::span<const std::uint8_t> data)
{
    return as_text(data).find("-----BEGIN ") != std::string_view::npos;
}

bool has_pem_label(std::span<const std::uint8_t> data, std::string_view label)
{
    std::string marker = "-----BEGIN " + std::string(label) + "-----";
    return as_text(data).find(marker) != std::string_view::npos;
}

} // namespace mgs

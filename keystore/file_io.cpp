#include "keystore/file_io.h"

#include "keystore/error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
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
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0)
        throw Error("cannot read " + path + ": " + std::strerror(errno));
    Bytes out;
    std::uint8_t buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw Error("cannot read " + path + ": " + std::strerror(errno));
        }
        if (n == 0)
            break;
        out.insert(out.end(), buf, buf + n);
        if (out.size() > 16 * 1024 * 1024)
            throw Error("cannot read " + path + ": larger than 16 MiB, not a key or certificate file");
    }
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

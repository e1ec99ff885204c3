// A TlsConnection transport over one end of a socketpair, for unit tests.
#pragma once

#include "src/tls_connection.h"

#include <sys/socket.h>

namespace mgs::test {

class SocketTransport final : public Transport {
public:
    explicit SocketTransport(int fd) : fd_(fd) {}
    ssize_t pull(std::span<std::uint8_t> b) noexcept override { return ::recv(fd_, b.data(), b.size(), 0); }
    ssize_t push(std::span<const std::uint8_t> b) noexcept override
    {
        return ::send(fd_, b.data(), b.size(), MSG_NOSIGNAL);
    }
    int wait_readable(unsigned) noexcept override { return 1; }

private:
    int fd_;
};

} // namespace mgs::test

// A forked child that reports through a pipe: `exec:` secret sources and
// the TPM key check. One place for fork, the pipe, reading and waitpid.
#pragma once

#include "keystore/bytes.h"

#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>

namespace mgs {

struct ChildOutput {
    Bytes output; // what the child wrote, at most `max` bytes of it
    int status = 0; // as from waitpid
    bool timed_out = false; // killed at the deadline
};

// Runs `body(fd)` in a forked child, `fd` being the write end of the pipe;
// the child exits when `body` returns (or execs). Waits for it. The read
// buffer is wiped (the output may be a secret). Throws mgs::Error naming
// `what` if the pipe or the fork fails. With a deadline, a child (and its
// process group: the child leads a new one) still running then is killed.
ChildOutput run_child(const std::string& what, const std::function<void(int fd)>& body, std::size_t max,
                      std::optional<std::chrono::milliseconds> deadline = std::nullopt);

// Writes all of `data` to `fd` (a child's answer on its pipe), again after
// EINTR; stops quietly when the reader is gone.
void write_all(int fd, std::span<const std::uint8_t> data);

// "exited with status N" / "was killed by signal N".
std::string describe_exit(int status);

} // namespace mgs

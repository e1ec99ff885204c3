// A PIN, passphrase or authorization value. It wipes its memory when it goes
// away and has no stream operator, so it cannot end up in a log by accident;
// the one way to read it is reveal(), which is easy to grep for.
#pragma once

#include <string>
#include <string_view>

namespace mgs {

class Secret {
public:
    Secret() = default;
    explicit Secret(std::string_view value);
    Secret(const Secret& other);
    Secret& operator=(const Secret& other);
    Secret(Secret&& other) noexcept;
    Secret& operator=(Secret&& other) noexcept;
    ~Secret();

    bool empty() const noexcept { return value_.empty(); }
    // NUL-terminated, for C APIs that take a password.
    const char* reveal() const noexcept { return value_.c_str(); }
    std::size_t size() const noexcept { return value_.size(); }

private:
    void wipe() noexcept;
    std::string value_;
};

} // namespace mgs

// GnuTLS priority strings, compiled once at configuration time.
#pragma once

#include "keystore/error.h"
#include "keystore/gnutls_handles.h"

#include <string>

namespace mgs {

inline constexpr const char* default_priorities = "NORMAL:-RSA:-VERS-TLS1.0:-VERS-TLS1.1";

class PriorityError : public Error {
public:
    PriorityError(const std::string& message, std::size_t position)
        : Error(message), position_(position) {}
    std::size_t position() const { return position_; }

private:
    std::size_t position_;
};

// Throws PriorityError: "invalid priority string at position N (at 'TOKEN'): ...".
Priority compile_priorities(const std::string& priorities);

} // namespace mgs

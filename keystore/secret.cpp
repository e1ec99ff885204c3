#include "keystore/secret.h"

#include <string.h>

namespace mgs {

Secret::Secret(std::string_view value) : value_(value) {}
Secret::Secret(const Secret& other) : value_(other.value_) {}

Secret& Secret::operator=(const Secret& other)
{
    if (this != &other) {
        wipe();
        value_ = other.value_;
    }
    return *this;
}

Secret::Secret(Secret&& other) noexcept : value_(other.value_) { other.wipe(); }

Secret& Secret::operator=(Secret&& other) noexcept
{
    if (this != &other) {
        wipe();
        value_ = other.value_;
        other.wipe();
    }
    return *this;
}

Secret::~Secret() { wipe(); }

void Secret::wipe() noexcept
{
    // explicit_bzero is not optimised away, unlike a memset before free.
    explicit_bzero(value_.data(), value_.capacity());
    value_.clear();
}

} // namespace mgs

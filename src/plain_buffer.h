// Decrypted bytes waiting for the web server's input filters. Holds memory
// only while it holds bytes: an idle keep-alive connection keeps no 16 KiB
// record buffer (measured as memory per idle connection in bench/), and
// growing it does not zero-fill what GnuTLS is about to overwrite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

namespace mgs {

class PlainBuffer {
public:
    const char* begin() const { return data_.get() + off_; }
    std::size_t avail() const { return size_ - off_; }

    // Room for `n` more bytes at the end; commit() what was written.
    std::span<std::uint8_t> reserve(std::size_t n)
    {
        if (off_ == size_)
            off_ = size_ = 0;
        if (capacity_ - size_ < n) {
            std::size_t want = size_ - off_ + n;
            auto grown = std::make_unique_for_overwrite<char[]>(want);
            if (size_ > off_)
                std::memcpy(grown.get(), data_.get() + off_, size_ - off_);
            size_ -= off_;
            off_ = 0;
            data_ = std::move(grown);
            capacity_ = want;
        }
        return {reinterpret_cast<std::uint8_t*>(data_.get() + size_), n};
    }
    void commit(std::size_t n) { size_ += n; }

    // Hands `n` bytes on; the memory goes once nothing is left.
    void consume(std::size_t n)
    {
        off_ += n;
        release_if_empty();
    }

    // After a read that brought nothing (e.g. the speculative read Apache
    // makes after each response).
    void release_if_empty()
    {
        if (off_ == size_) {
            data_.reset();
            off_ = size_ = capacity_ = 0;
        }
    }

private:
    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t off_ = 0;
    std::size_t capacity_ = 0;
};

} // namespace mgs

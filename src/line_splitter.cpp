#include "src/line_splitter.h"

#include <cstring>

namespace mgs {

std::size_t getline_length(std::span<const char> buffered, std::size_t max)
{
    if (buffered.empty())
        return 0; // no memchr on an empty (null) buffer
    if (const void* lf = std::memchr(buffered.data(), '\n', buffered.size()))
        return static_cast<std::size_t>(static_cast<const char*>(lf) - buffered.data()) + 1;
    return buffered.size() >= max ? buffered.size() : 0;
}

} // namespace mgs

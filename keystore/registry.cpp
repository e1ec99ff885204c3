#include "keystore/registry.h"

#include "keystore/error.h"

namespace mgs {

void KeyRegistry::add(std::unique_ptr<KeyBackend> backend) { backends_.push_back(std::move(backend)); }

const KeyBackend* KeyRegistry::backend_for(std::string_view reference) const
{
    for (const auto& b : backends_)
        if (b->claims(reference))
            return b.get();
    return nullptr;
}

std::shared_ptr<Signer> KeyRegistry::open(std::string_view reference, const KeyOptions& options) const
{
    const KeyBackend* backend = backend_for(reference);
    if (!backend)
        throw Error("no key backend understands the key reference");
    return backend->open(reference, options);
}

} // namespace mgs

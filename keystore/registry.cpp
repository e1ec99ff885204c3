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

bool KeyRegistry::names_a_file(std::string_view reference) const
{
    for (const auto& b : backends_)
        if (b->claims_uri(reference))
            return false;
    return true;
}

std::shared_ptr<Signer> KeyRegistry::open(std::string_view reference, const KeyOptions& options) const
{
    const KeyBackend* backend = backend_for(reference);
    if (!backend)
        throw Error(std::string(reference) + ": no key backend takes this reference");
    return backend->open(reference, options);
}

} // namespace mgs

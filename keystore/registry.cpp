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
        throw Error(std::string(reference.substr(0, reference.find(':') + 1)) +
                    " key references are not supported by this build (TPM 2.0 handles: not yet)");
    return backend->open(reference, options);
}

} // namespace mgs

// The TPM 2.0 backend of the keystore: TSS2 PRIVATE KEY files and persistent
// handles ("handle:0x81000001"), through tpm2-tss.
#pragma once

#include "keystore/registry.h"

namespace mgs::tpm {

class KeyAgent;

class TpmKeyBackend final : public KeyBackend {
public:
    // With an agent (Apache: the configuration's key agent), every key
    // opened here signs through it once it runs; without, in this process.
    explicit TpmKeyBackend(KeyAgent* agent = nullptr) : agent_(agent) {}
    std::string_view name() const override { return "tpm2"; }
    // "handle:..." references, and files whose PEM block is a TSS2 PRIVATE KEY.
    bool claims_uri(std::string_view reference) const override;
    bool claims(std::string_view reference) const override;
    // Loads the key once to check it (TPM reachable, parent and key
    // authorization, schemes, one test signature), then lets go of the TPM:
    // in Apache the key agent holds it (see key_agent.h); elsewhere the
    // signer opens its own connection when it first signs.
    std::shared_ptr<Signer> open(std::string_view reference, const KeyOptions& options) const override;

private:
    KeyAgent* agent_;
};

} // namespace mgs::tpm

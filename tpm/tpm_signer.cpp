#include "tpm/tpm_signer.h"

#include "keystore/error.h"
#include "keystore/file_io.h"
#include "keystore/public_key.h"
#include "tpm/key_agent.h"
#include "tpm/key_check.h"
#include "tpm/key_file.h"
#include "tpm/tls_signing.h"

#include <gnutls/crypto.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

namespace mgs::tpm {

namespace {

constexpr std::string_view handle_prefix = "handle:";

std::uint32_t parse_handle(std::string_view reference)
{
    std::string text(reference.substr(handle_prefix.size()));
    char* end = nullptr;
    unsigned long v = std::strtoul(text.c_str(), &end, 0);
    if (text.empty() || *end || (v >> 24) != TPM2_HT_PERSISTENT || v > 0xffffffffUL)
        throw Error(std::string(reference) + ": not a persistent TPM handle (expected handle:0x81000000 to "
                                             "handle:0x81ffffff)");
    return static_cast<std::uint32_t>(v);
}

class TpmSigner final : public Signer {
public:
    TpmSigner(KeySpec spec, const KeyFacts& facts) : spec_(std::move(spec))
    {
        pk_ = facts.algorithm;
        bits_ = facts.bits;
        schemes_ = std::move(facts.schemes);
        public_der_ = std::move(facts.public_der);
    }

    std::string describe() const override { return spec_.reference; }
    std::string backend() const override { return "tpm2"; }
    gnutls_pk_algorithm_t algorithm() const override { return pk_; }
    unsigned bits() const override { return bits_; }
    std::vector<gnutls_sign_algorithm_t> schemes() const override { return schemes_; }
    SignerHealth health() const override { return healthy_ ? SignerHealth::ok : SignerHealth::unavailable; }

    PubKey public_key() const override { return public_key_from_der(public_der_, describe()); }

    // Called in the Apache parent once the key is accepted for serving.
    void serve_through_agent(KeyAgent& agent, std::size_t index)
    {
        agent_ = &agent;
        agent_index_ = index;
        // The agent holds the authorizations now; this object is in every
        // Apache child.
        spec_.auth = Secret{};
        spec_.parent_auth = Secret{};
    }

    Bytes sign(const SignRequest& req) override
    {
        try {
            Bytes sig = agent_ && agent_->active() ? agent_->sign(agent_index_, req) : sign_here(req);
            healthy_ = true;
            return sig;
        } catch (...) {
            healthy_ = false;
            throw;
        }
    }

private:
    // Without the agent (tests, tools): this process's own connection.
    Bytes sign_here(const SignRequest& req)
    {
        std::lock_guard lock(mutex_);
        for (int attempt = 0; attempt < 2; ++attempt) {
            try {
                if (!key_) {
                    tpm_ = std::make_unique<TpmContext>(spec_.tcti);
                    key_ = std::make_unique<LoadedKey>(*tpm_, spec_);
                }
                return sign_for_tls(*key_, req);
            } catch (const TpmError& e) {
                key_.reset();
                tpm_.reset();
                if (!is_link_failure(e.rc()) || attempt == 1)
                    throw Error(spec_.reference + ": " + e.what());
            }
        }
        throw Error(spec_.reference + ": unreachable");
    }

    KeySpec spec_;
    gnutls_pk_algorithm_t pk_ = GNUTLS_PK_UNKNOWN;
    unsigned bits_ = 0;
    std::vector<gnutls_sign_algorithm_t> schemes_;
    Bytes public_der_;
    KeyAgent* agent_ = nullptr; // the agent that holds this key, if any
    std::size_t agent_index_ = 0;
    std::atomic<bool> healthy_{true};

    std::mutex mutex_;
    std::unique_ptr<TpmContext> tpm_;
    std::unique_ptr<LoadedKey> key_;
};

} // namespace

bool TpmKeyBackend::claims_uri(std::string_view reference) const { return reference.starts_with(handle_prefix); }

bool TpmKeyBackend::claims(std::string_view reference) const
{
    if (claims_uri(reference))
        return true;
    // A short read of the file's start: a TSS2 PEM block says what it is.
    // Every key file is asked here, so the bytes are wiped (an ifstream's
    // buffer would leave the start of a key file in freed memory, which
    // every worker inherits).
    Bytes head = read_file_start(std::string(reference), 4096);
    const bool tss2 = is_tss2_pem(head);
    gnutls_memset(head.data(), 0, head.size());
    return tss2;
}

std::shared_ptr<Signer> TpmKeyBackend::open(std::string_view reference, const KeyOptions& options) const
{
    KeySpec spec;
    spec.reference = std::string(reference);
    spec.auth = options.pin;
    spec.parent_auth = options.srk_pin;
    spec.tcti = options.tpm_tcti;
    if (reference.starts_with(handle_prefix)) {
        spec.persistent = parse_handle(reference);
    } else {
        Bytes data = read_file(spec.reference);
        spec.file = parse_tss2_key(data, spec.reference);
    }
    std::shared_ptr<TpmSigner> signer;
    KeyFacts facts;
    try {
        // A restart with this very key (same file, authorizations, TPM):
        // what the last check found, without touching the TPM the running
        // agent holds the key in.
        std::optional<KeyFacts> known = agent_ ? agent_->known_facts(spec) : std::nullopt;
        facts = known ? std::move(*known) : check_key_in_child(spec);
        signer = std::make_shared<TpmSigner>(spec, facts);
    } catch (const Error& e) {
        throw Error("TPM 2.0 key " + spec.reference + ": " + e.what());
    }
    if (agent_)
        signer->serve_through_agent(*agent_, agent_->add_key(spec, facts));
    return signer;
}

} // namespace mgs::tpm

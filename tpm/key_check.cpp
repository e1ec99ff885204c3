#include "tpm/key_check.h"

#include "keystore/child_process.h"
#include "keystore/public_key.h"
#include "tpm/agent_message.h"
#include "tpm/tls_signing.h"
#include "tpm/tpm_context.h"

#include <gnutls/crypto.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mgs::tpm {

KeyFacts check_key(const KeySpec& spec)
{
    TpmContext tpm(spec.tcti);
    LoadedKey key(tpm, spec);
    KeyFacts facts;
    facts.algorithm = key.algorithm();
    facts.bits = key.bits();
    facts.schemes = tls_schemes(key);
    PubKey pub = key.public_key();
    facts.public_der = public_key_der(pub.get());
    // One signature now: a wrong key authorization shows at startup, not at
    // the first handshake (and is not retried: TPM dictionary-attack
    // protection counts every failure).
    Bytes digest(gnutls_hash_get_len(GNUTLS_DIG_SHA256), 0x42);
    gnutls_sign_algorithm_t probe = facts.schemes.front();
    if (gnutls_sign_get_hash_algorithm(probe) != GNUTLS_DIG_SHA256)
        for (auto s : facts.schemes)
            if (gnutls_sign_get_hash_algorithm(s) == GNUTLS_DIG_SHA256)
                probe = s;
    Bytes sig;
    try {
        sig = sign_for_tls(key, SignRequest{probe, SignInput::digest, digest, 0});
    } catch (const TpmError& e) {
        TSS2_RC base = e.rc() & ~TPM2_RC_N_MASK;
        if (base == TPM2_RC_AUTH_FAIL || base == TPM2_RC_BAD_AUTH)
            throw Error("the TPM refused the key's authorization (GnuTLSPIN / GnuTLSPINSource): " + rc_text(e.rc()));
        throw;
    }
    gnutls_datum_t d{digest.data(), static_cast<unsigned>(digest.size())};
    gnutls_datum_t s{sig.data(), static_cast<unsigned>(sig.size())};
    if (int rc = gnutls_pubkey_verify_hash2(pub.get(), probe, 0, &d, &s); rc < 0)
        throw_gnutls("a test signature by the TPM key does not verify against its public key", rc);
    return facts;
}

namespace {

// The child's answer on the pipe: the facts, little-endian (agent_message.h).
void put_u32(Bytes& out, std::uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

std::uint32_t get_u32(const Bytes& in, std::size_t& at)
{
    if (at + 4 > in.size())
        throw Error("the TPM key check process sent a truncated answer");
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
        v |= static_cast<std::uint32_t>(in[at + i]) << (8 * i);
    at += 4;
    return v;
}

Bytes encode(const KeyFacts& f)
{
    Bytes out;
    put_u32(out, static_cast<std::uint32_t>(f.algorithm));
    put_u32(out, f.bits);
    put_u32(out, static_cast<std::uint32_t>(f.schemes.size()));
    for (auto s : f.schemes)
        put_u32(out, static_cast<std::uint32_t>(s));
    out.insert(out.end(), f.public_der.begin(), f.public_der.end());
    return ok_answer(out);
}

KeyFacts decode(const Bytes& answer)
{
    Bytes in = open_answer(answer, "the TPM key check process died without an answer");
    std::size_t at = 0;
    KeyFacts f;
    f.algorithm = static_cast<gnutls_pk_algorithm_t>(get_u32(in, at));
    f.bits = get_u32(in, at);
    std::uint32_t n = get_u32(in, at);
    if (n == 0 || n > 64)
        throw Error("the TPM key check process sent a malformed answer");
    for (std::uint32_t i = 0; i < n; ++i)
        f.schemes.push_back(static_cast<gnutls_sign_algorithm_t>(get_u32(in, at)));
    f.public_der.assign(in.begin() + static_cast<std::ptrdiff_t>(at), in.end());
    return f;
}


} // namespace

KeyFacts check_key_in_child(const KeySpec& spec)
{
    ChildOutput child = run_child(
        "cannot start the TPM key check",
        [&](int fd) {
            Bytes answer;
            try {
                answer = encode(check_key(spec));
            } catch (const std::exception& e) {
                answer = error_answer(e.what());
            } catch (...) {
                answer = error_answer("the TPM key check failed");
            }
            write_all(fd, answer);
            ::_exit(0);
        },
        1 << 20);
    return decode(child.output);
}

} // namespace mgs::tpm

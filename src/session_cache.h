// Session resumption on the server: a store for TLS 1.2 session data (the
// web server plugs in its shared cache) and the session-ticket key.
#pragma once

#include "keystore/signer.h"

#include <chrono>
#include <optional>
#include <span>
#include <string_view>

namespace mgs {

class SessionStore {
public:
    virtual ~SessionStore() = default;
    // Failures are not errors for TLS: the session is simply not resumable.
    // Entries live for the store's own timeout.
    virtual void store(std::span<const std::uint8_t> id, std::span<const std::uint8_t> data) noexcept = 0;
    virtual std::optional<Bytes> retrieve(std::span<const std::uint8_t> id) noexcept = 0;
    virtual void remove(std::span<const std::uint8_t> id) noexcept = 0;
};

// Lets GnuTLS store and resume sessions through `store`, which must outlive
// the session; sessions (and tickets) are valid for `lifetime`.
void attach_session_store(gnutls_session_t session, SessionStore& store, std::chrono::seconds lifetime);

// A session-ticket key. GnuTLS derives the keys that encrypt tickets from
// it and rotates them as tickets expire, still accepting the previous one
// for a while. A random master key comes with every configuration load
// (graceful restart), as mod_gnutls documents; each virtual host encrypts
// its tickets with a key derived from it and the virtual host's identity,
// so a ticket made for one virtual host never resumes on another.
class TicketKey {
public:
    TicketKey(); // a random master key
    // HKDF-Expand (SHA-256) of the master key with `context`.
    TicketKey(const TicketKey& master, std::string_view context);
    TicketKey(const TicketKey&) = delete;
    TicketKey& operator=(const TicketKey&) = delete;
    ~TicketKey();
    const gnutls_datum_t* get() const { return &key_; }

private:
    gnutls_datum_t key_{};
};

} // namespace mgs

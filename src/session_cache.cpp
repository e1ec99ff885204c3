#include "src/session_cache.h"

#include "keystore/error.h"

#include <gnutls/crypto.h>

#include <cstring>
#include <string>

namespace mgs {

namespace {

SessionStore& store_of(void* ptr) { return *static_cast<SessionStore*>(ptr); }

std::span<const std::uint8_t> bytes(const gnutls_datum_t& d) { return {d.data, d.size}; }

int store_fn(void* ptr, gnutls_datum_t key, gnutls_datum_t data)
{
    store_of(ptr).store(bytes(key), bytes(data));
    return 0;
}

gnutls_datum_t retrieve_fn(void* ptr, gnutls_datum_t key)
{
    gnutls_datum_t out{nullptr, 0};
    if (auto data = store_of(ptr).retrieve(bytes(key))) {
        out.data = static_cast<unsigned char*>(gnutls_malloc(data->size()));
        if (out.data) {
            std::memcpy(out.data, data->data(), data->size());
            out.size = static_cast<unsigned>(data->size());
        }
    }
    return out;
}

int remove_fn(void* ptr, gnutls_datum_t key)
{
    store_of(ptr).remove(bytes(key));
    return 0;
}

} // namespace

void attach_session_store(gnutls_session_t session, SessionStore& store, std::chrono::seconds lifetime)
{
    gnutls_db_set_ptr(session, &store);
    gnutls_db_set_store_function(session, store_fn);
    gnutls_db_set_retrieve_function(session, retrieve_fn);
    gnutls_db_set_remove_function(session, remove_fn);
    gnutls_db_set_cache_expiration(session, static_cast<int>(lifetime.count()));
}

TicketKey::TicketKey()
{
    if (int rc = gnutls_session_ticket_key_generate(&key_); rc < 0)
        throw_gnutls("cannot generate the session ticket key", rc);
}

TicketKey::TicketKey(const TicketKey& master, std::string_view context)
{
    key_.size = master.key_.size;
    key_.data = static_cast<unsigned char*>(gnutls_malloc(key_.size));
    if (!key_.data)
        throw Error("cannot derive a session ticket key: out of memory");
    std::string info = "mod_gnutls session ticket key: ";
    info += context;
    gnutls_datum_t info_d{reinterpret_cast<unsigned char*>(info.data()), static_cast<unsigned>(info.size())};
    if (int rc = gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &master.key_, &info_d, key_.data, key_.size); rc < 0) {
        gnutls_free(key_.data);
        key_.data = nullptr;
        throw_gnutls("cannot derive a session ticket key", rc);
    }
}

TicketKey::~TicketKey()
{
    if (key_.data) {
        gnutls_memset(key_.data, 0, key_.size);
        gnutls_free(key_.data);
    }
}

} // namespace mgs

// The Apache and APR headers, and the module record, in one place. Only
// httpd/ includes this.
#pragma once

// C++20 has designated initializers, which Apache only assumes of C99
// compilers; with them the directive table is type-checked.
#define AP_HAVE_DESIGNATED_INITIALIZER

#include <httpd.h>

#include <apr_strings.h>
#include <http_config.h>
#include <http_connection.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_ssl.h>
#include <http_vhost.h>
#include <util_filter.h>

#include <cstddef>

// For C++, APR computes offsetof by subtracting a null pointer (in its ring
// macros: APR_BRIGADE_INSERT_TAIL, APR_BRIGADE_SENTINEL, ...), which is
// undefined behaviour and which clang warns about. Its C structs are
// standard-layout, so the standard offsetof gives the same offsets.
#undef APR_OFFSETOF
#define APR_OFFSETOF(s_type, field) offsetof(s_type, field)

extern "C" {
extern module AP_MODULE_DECLARE_DATA gnutls_module;
}

namespace mgs::httpd {

// Runs `T`'s destructor when the pool is cleared: C++ objects owned by pools.
template <typename T>
T* pool_owned(apr_pool_t* p, T* object)
{
    apr_pool_cleanup_register(
        p, object,
        [](void* o) -> apr_status_t {
            delete static_cast<T*>(o);
            return APR_SUCCESS;
        },
        apr_pool_cleanup_null);
    return object;
}

} // namespace mgs::httpd

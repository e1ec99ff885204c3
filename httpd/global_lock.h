// Holds an Apache global mutex for a scope; a null mutex (a provider that
// needs none) holds nothing.
#pragma once

#include "httpd/apache.h"

#include <apr_global_mutex.h>

namespace mgs::httpd {

class GlobalLock {
public:
    explicit GlobalLock(apr_global_mutex_t* m) : m_(m && apr_global_mutex_lock(m) == APR_SUCCESS ? m : nullptr) {}
    // Try only: held() says whether it got the mutex (never waits).
    struct Try {};
    GlobalLock(apr_global_mutex_t* m, Try) : m_(m && apr_global_mutex_trylock(m) == APR_SUCCESS ? m : nullptr) {}
    // Waits at most `timeout` (where the mutex mechanism cannot time its
    // wait, only tries).
    struct Within {
        apr_interval_time_t timeout;
    };
    GlobalLock(apr_global_mutex_t* m, Within w) : m_(nullptr)
    {
        if (!m)
            return;
        apr_status_t rv = apr_global_mutex_timedlock(m, w.timeout);
        if (rv == APR_ENOTIMPL)
            rv = apr_global_mutex_trylock(m);
        if (rv == APR_SUCCESS)
            m_ = m;
    }
    bool held() const { return m_ != nullptr; }
    GlobalLock(const GlobalLock&) = delete;
    GlobalLock& operator=(const GlobalLock&) = delete;
    ~GlobalLock()
    {
        if (m_)
            apr_global_mutex_unlock(m_);
    }

private:
    apr_global_mutex_t* m_;
};

} // namespace mgs::httpd

// Runs the TPM key agent (tpm/key_agent.h) as a child of the Apache parent:
// started after the configuration is loaded, restarted if it dies, stopped
// when the configuration is unloaded (graceful restart, stop).
#pragma once

#include "httpd/apache.h"

namespace mgs::httpd {

int start_key_agent(apr_pool_t* pconf, apr_pool_t* plog, apr_pool_t* ptemp, server_rec* s);
void key_agent_child_init(apr_pool_t* pchild, server_rec* s);

} // namespace mgs::httpd

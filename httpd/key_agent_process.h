// Runs the key agent (tpm/key_agent.h: TPM keys and GnuTLSKeyIsolation's) as a child of the Apache parent:
// started after the configuration is loaded, restarted if it dies, kept
// across a restart whose TPM keys did not change (the old generation's
// children finish their handshakes with it), replaced when they changed,
// stopped with Apache.
#pragma once

#include "httpd/apache.h"
#include "tpm/key_agent.h"

#include <memory>

namespace mgs::httpd {

int start_key_agent(apr_pool_t* pconf, apr_pool_t* plog, apr_pool_t* ptemp, server_rec* s);
void key_agent_child_init(apr_pool_t* pchild, server_rec* s);
// The MPM's parent maintenance (ap_hook_monitor): starts an agent that
// could not be started when it died.
int key_agent_monitor(apr_pool_t* p, server_rec* s);
// The agent the previous configuration generation left running at a
// restart, for the new generation's KeyAgent (null at startup).
std::unique_ptr<tpm::RunningAgent> take_parked_agent();

} // namespace mgs::httpd

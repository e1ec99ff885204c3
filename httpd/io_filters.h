// The connection filters: TLS records below, plaintext HTTP above.
#pragma once

#include "httpd/apache.h"

namespace mgs::httpd {

apr_status_t input_filter(ap_filter_t* f, apr_bucket_brigade* bb, ap_input_mode_t mode, apr_read_type_e block,
                          apr_off_t readbytes);
apr_status_t output_filter(ap_filter_t* f, apr_bucket_brigade* bb);

} // namespace mgs::httpd

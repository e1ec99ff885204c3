#pragma once

#include "httpd/apache.h"

namespace mgs::httpd {

extern const command_rec directives[];

} // namespace mgs::httpd

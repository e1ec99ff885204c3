// gnutls-keystore: the key doctor. Checks a key reference (and its
// certificate chain) exactly as mod_gnutls will load it, without starting
// Apache, and measures its signing rate. Built from the module's own
// keystore, PKCS#11 and TPM libraries (docs/key-doctor.md).
#include "tools/gnutls-keystore/check.h"
#include "tools/gnutls-keystore/check_config.h"
#include "tools/gnutls-keystore/list.h"
#include "tools/gnutls-keystore/new_key.h"
#include "tools/gnutls-keystore/options.h"
#include "tools/gnutls-keystore/speed.h"

#include <cstdio>
#include <exception>

int main(int argc, char** argv)
{
    using namespace mgs::tool;
    Options options;
    try {
        options = parse_options(argc, argv);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "gnutls-keystore: %s\n\n%s", e.what(), usage);
        return 2;
    }
    try {
        if (options.command == "check")
            return run_check(options);
        if (options.command == "new")
            return run_new(options);
        if (options.command == "check-config")
            return run_check_config(options);
        return options.command == "speed" ? run_speed(options) : run_list(options);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "gnutls-keystore: %s\n\n%s", e.what(), usage);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gnutls-keystore: %s\n", e.what());
        return 1;
    }
}

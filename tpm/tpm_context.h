// One connection to a TPM through tpm2-tss: the TCTI (chosen by a
// GnuTLSTPMTCTI string, or tpm2-tss's own search) and an ESYS context on it.
#pragma once

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include <string>

namespace mgs::tpm {

// "Tss2_RC_Decode text (0xRC)", for messages.
std::string rc_text(TSS2_RC rc);
// True when rc says the TPM could not be reached (the TCTI or the link
// failed), as opposed to the TPM answering with an error.
bool is_link_failure(TSS2_RC rc);
// The TPM no longer holds an object we loaded (TPM2_RC_REFERENCE_H0..H6):
// without a resource manager another client can flush it (swtpm, or a TPM
// device used without /dev/tpmrm0: `apachectl configtest` checking the keys
// while the agent serves them does).
bool is_object_gone(TSS2_RC rc);

class TpmContext {
public:
    // Throws mgs::Error: "no TPM reachable at <tcti>: <decoded rc>". The TPM
    // must answer its first command within answer_timeout_ms (swtpm serves
    // one client at a time: a second client would otherwise wait forever).
    explicit TpmContext(const std::string& tcti, int answer_timeout_ms = 5000);
    ~TpmContext();
    TpmContext(const TpmContext&) = delete;
    TpmContext& operator=(const TpmContext&) = delete;

    ESYS_CONTEXT* esys() const { return esys_; }
    // How the TCTI was named, for messages ("tpm2-tss default" if empty).
    const std::string& where() const { return where_; }

private:
    void flush_leftovers();

    TSS2_TCTI_CONTEXT* tcti_ = nullptr;
    ESYS_CONTEXT* esys_ = nullptr;
    std::string where_;
};

// Frees memory ESYS returned.
template <typename T> struct EsysFree {
    void operator()(T* p) const { Esys_Free(p); }
};

} // namespace mgs::tpm

#ifndef RESOLVERD_CLDNS_SHIM_H
#define RESOLVERD_CLDNS_SHIM_H
#include <ldns/ldns.h>
#include <string.h>

/// Writes the uncompressed wire form of an RR's RDATA into `out`.
/// Returns the length written, or -1 when it does not fit or ldns fails.
static inline long cldns_rdata_wire(const ldns_rr *rr, uint8_t *out, size_t capacity) {
    ldns_buffer *buffer = ldns_buffer_new(capacity > 0 ? capacity : 1);
    if (buffer == NULL) { return -1; }
    long result = -1;
    if (ldns_rr_rdata2buffer_wire(buffer, rr) == LDNS_STATUS_OK) {
        size_t length = ldns_buffer_position(buffer);
        if (length <= capacity) {
            memcpy(out, ldns_buffer_begin(buffer), length);
            result = (long)length;
        }
    }
    ldns_buffer_free(buffer);
    return result;
}

#endif

/* A narrow, opaque interface to ISA-L's streaming gzip inflate, so the Rust side never depends on
 * the layout of `struct inflate_state` (which changes between ISA-L releases). */
#include <stdint.h>
#include <stdlib.h>
#include <isa-l/igzip_lib.h>

struct inflate_state *weir_isal_new(void) {
    struct inflate_state *s = malloc(sizeof *s);
    if (s) {
        isal_inflate_init(s);
        s->crc_flag = ISAL_GZIP;
    }
    return s;
}

void weir_isal_free(struct inflate_state *s) { free(s); }

/* Starts the next gzip member. */
void weir_isal_reset(struct inflate_state *s) {
    isal_inflate_reset(s);
    s->crc_flag = ISAL_GZIP;
}

/* 1 once the current member has been fully decoded (trailer checked). */
int weir_isal_member_done(const struct inflate_state *s) { return s->block_state == ISAL_BLOCK_FINISH; }

/* Inflates from `in` into `out`; reports bytes consumed and produced. Returns ISA-L's status
 * (>= 0 fine, < 0 corrupt input). */
int weir_isal_inflate(struct inflate_state *s, const uint8_t *in, uint32_t in_len, uint32_t *consumed,
                      uint8_t *out, uint32_t out_len, uint32_t *produced) {
    s->next_in = (uint8_t *)in;
    s->avail_in = in_len;
    s->next_out = out;
    s->avail_out = out_len;
    int rc = isal_inflate(s);
    *consumed = in_len - s->avail_in;
    *produced = out_len - s->avail_out;
    return rc;
}

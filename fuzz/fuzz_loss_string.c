/* libFuzzer target for the loss-string parser (src/search/loss_string.c).
 *
 * The input bytes (up to 1 KiB) become a NUL-terminated string. Besides the sanitizers'
 * checks, every accepted string must round-trip: its canonical form parses again to the same
 * terms (kind, index, value; weights equal after %g formatting to 6 significant digits), and
 * every rejected string leaves an empty spec and a one-line message. */
#include "search/loss_string.h"
#include "core/error.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1024) return 0;
    char s[1025];
    memcpy(s, data, size);
    s[size] = 0;
    fu_loss_spec a, b;
    if (fu_loss_parse(s, &a) != FU_OK) {
        if (a.n_terms != 0 || strchr(fu_last_error(), '\n') || !*fu_last_error()) abort();
        return 0;
    }
    char canon[4096];
    fu_loss_spec_string(&a, canon, sizeof canon);
    if (fu_loss_parse(canon, &b) != FU_OK || b.n_terms != a.n_terms) abort();
    for (int i = 0; i < a.n_terms; i++) {
        const fu_loss_term *x = &a.terms[i], *y = &b.terms[i];
        if (x->kind != y->kind || x->index != y->index || x->value != y->value) abort();
        if (fabsf(x->weight - y->weight) > 1e-5f * fabsf(x->weight) + 1e-30f) abort();
    }
    return 0;
}

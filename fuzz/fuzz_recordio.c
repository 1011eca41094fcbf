/* libFuzzer target for the RecordIO reader (src/io/recordio.c): the input is .idx text, a NUL
 * byte, then the .rec bytes; every indexed record is read (parts joined) and its IRHeader
 * unpacked with all its labels. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/recordio.h"

static volatile float sink;  /* keeps the label and data reads */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul) return 0;
    size_t idx_size = (size_t)(nul - data);
    fu_recordio *r = fu_recordio_open_mem(nul + 1, size - idx_size - 1, (const char *)data, idx_size, "fuzz.rec");
    if (!r) return 0;
    for (int64_t i = 0; i < r->n; i++) {
        unsigned char *p;
        size_t n;
        fu_irheader h;
        if (fu_recordio_read(r, i, &p, &n) != 0) continue;
        if (fu_irheader_unpack(p, n, &h, "fuzz") == 0) {
            for (uint32_t k = 0; k < h.flag; k++) sink += fu_irheader_label(&h, k);
            if (h.data_size) sink += h.data[h.data_size - 1];
        }
        free(p);
    }
    (void)fu_recordio_find(r, 1);
    fu_recordio_close(r);
    return 0;
}

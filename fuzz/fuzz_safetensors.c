/* libFuzzer target: safetensors parsing and conversion of every entry to float32. */
#include <stddef.h>
#include <stdint.h>
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fu_safetensors *st = fu_st_parse(data, size, "fuzz");
    for (int i = 0; st && i < st->n_entries; i++) fu_tensor_free(fu_st_tensor(st, st->entries[i].name));
    fu_st_free(st);
    return 0;
}

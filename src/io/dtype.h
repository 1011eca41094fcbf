/* Element types of weight files and conversion to float32 (little-endian sources). */
#ifndef FU_DTYPE_H
#define FU_DTYPE_H
#include <stddef.h>
#include <stdint.h>

typedef enum { FU_F32, FU_F16, FU_BF16, FU_F64, FU_I64, FU_I32, FU_I16, FU_I8, FU_U8, FU_BOOL, FU_DTYPE_COUNT } fu_dtype;

size_t fu_dtype_size(fu_dtype t);
const char *fu_dtype_name(fu_dtype t);          /* safetensors spelling: "F32", "BF16", ... */
int fu_dtype_from_name(const char *name);       /* -1 if unknown */
float fu_half_to_float(uint16_t h);
uint16_t fu_float_to_half(float f);             /* round to nearest even */
float fu_bf16_to_float(uint16_t h);
uint16_t fu_float_to_bf16(float f);             /* round to nearest even */
/* Converts n little-endian elements of type t at src to float32. */
void fu_convert_to_f32(fu_dtype t, const void *src, float *dst, size_t n);

#endif

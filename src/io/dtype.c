#include "dtype.h"
#include <math.h>
#include <string.h>

static const struct { const char *name; size_t size; } dtypes[FU_DTYPE_COUNT] = {
    [FU_F32] = {"F32", 4}, [FU_F16] = {"F16", 2}, [FU_BF16] = {"BF16", 2}, [FU_F64] = {"F64", 8},
    [FU_I64] = {"I64", 8}, [FU_I32] = {"I32", 4}, [FU_I16] = {"I16", 2}, [FU_I8] = {"I8", 1},
    [FU_U8] = {"U8", 1}, [FU_BOOL] = {"BOOL", 1},
};

size_t fu_dtype_size(fu_dtype t) { return (unsigned)t < FU_DTYPE_COUNT ? dtypes[t].size : 0; }
const char *fu_dtype_name(fu_dtype t) { return (unsigned)t < FU_DTYPE_COUNT ? dtypes[t].name : "?"; }

int fu_dtype_from_name(const char *name) {
    for (int i = 0; i < FU_DTYPE_COUNT; i++) if (!strcmp(name, dtypes[i].name)) return i;
    return -1;
}

float fu_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023;
    float v;
    if (exp == 0) v = ldexpf((float)man, -24);                       /* zero and subnormals */
    else if (exp == 31) v = man ? NAN : INFINITY;
    else v = ldexpf((float)(man | 1024), (int)exp - 25);
    uint32_t bits;
    memcpy(&bits, &v, 4);
    bits |= sign;
    memcpy(&v, &bits, 4);
    return v;
}

uint16_t fu_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f)) return sign | 0x7e00;
    if (a >= 65520.0f) return sign | 0x7c00;                           /* rounds to infinity */
    if (a < 6.103515625e-05f) return sign | (uint16_t)lrintf(a * 16777216.0f); /* subnormal: units of 2^-24 */
    int e;
    float m = frexpf(a, &e);                                           /* a = m * 2^e, m in [0.5, 1) */
    uint32_t mant = (uint32_t)lrintf(m * 2048.0f);                     /* 11 bits incl. the hidden one */
    if (mant == 2048) { mant = 1024; e++; }
    return sign | (uint16_t)(((uint32_t)(e + 14) << 10) | (mant - 1024));
}

float fu_bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

uint16_t fu_float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if (isnan(f)) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

void fu_convert_to_f32(fu_dtype t, const void *src, float *dst, size_t n) {
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = s + i * dtypes[t].size;
        switch (t) {
        case FU_F32: memcpy(&dst[i], p, 4); break;
        case FU_F16: dst[i] = fu_half_to_float((uint16_t)(p[0] | p[1] << 8)); break;
        case FU_BF16: dst[i] = fu_bf16_to_float((uint16_t)(p[0] | p[1] << 8)); break;
        case FU_F64: { double d; memcpy(&d, p, 8); dst[i] = (float)d; break; }
        case FU_I64: { int64_t v; memcpy(&v, p, 8); dst[i] = (float)v; break; }
        case FU_I32: { int32_t v; memcpy(&v, p, 4); dst[i] = (float)v; break; }
        case FU_I16: { int16_t v; memcpy(&v, p, 2); dst[i] = (float)v; break; }
        case FU_I8: dst[i] = (float)(int8_t)p[0]; break;
        default: dst[i] = (float)p[0]; break;
        }
    }
}

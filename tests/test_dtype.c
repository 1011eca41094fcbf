/* dtype.c: half and bfloat16 conversions (exhaustive round trips, rounding to nearest even at
 * every tie, subnormals, overflow to infinity, NaN) and little-endian decoding of every dtype. */
#include "test.h"
#include "io/dtype.h"
#include <stdint.h>
#include <float.h>
#include <string.h>

static uint32_t float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static int half_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

TEST(dtype_names_and_sizes) {
    CHECK(fu_dtype_from_name("F32") == FU_F32 && fu_dtype_from_name("BF16") == FU_BF16);
    CHECK(fu_dtype_from_name("U8") == FU_U8 && fu_dtype_from_name("BOOL") == FU_BOOL);
    CHECK(fu_dtype_from_name("f32") == -1 && fu_dtype_from_name("F8_E4M3") == -1 && fu_dtype_from_name("") == -1);
    CHECK(fu_dtype_size(FU_F64) == 8 && fu_dtype_size(FU_F16) == 2 && fu_dtype_size(FU_I32) == 4 && fu_dtype_size(FU_U8) == 1);
    CHECK(fu_dtype_size((fu_dtype)99) == 0 && strcmp(fu_dtype_name((fu_dtype)99), "?") == 0);
    for (int t = 0; t < FU_DTYPE_COUNT; t++) CHECK(fu_dtype_from_name(fu_dtype_name((fu_dtype)t)) == t);
}

TEST(half_known_values) {
    CHECK(fu_half_to_float(0x3c00) == 1.0f);
    CHECK(fu_half_to_float(0xc000) == -2.0f);
    CHECK(fu_half_to_float(0x3555) == 0.333251953125f);
    CHECK(fu_half_to_float(0x7bff) == 65504.0f);
    CHECK(fu_half_to_float(0x0400) == ldexpf(1, -14));            /* smallest normal */
    CHECK(fu_half_to_float(0x0001) == ldexpf(1, -24));            /* smallest subnormal */
    CHECK(fu_half_to_float(0x03ff) == ldexpf(1023, -24));         /* largest subnormal */
    CHECK(fu_half_to_float(0x7c00) == INFINITY && fu_half_to_float(0xfc00) == -INFINITY);
    CHECK(isnan(fu_half_to_float(0x7e00)) && isnan(fu_half_to_float(0x7c01)) && isnan(fu_half_to_float(0xfe00)));
    float nz = fu_half_to_float(0x8000);
    CHECK(nz == 0 && signbit(nz));
    CHECK(fu_float_to_half(1.0f) == 0x3c00 && fu_float_to_half(-2.0f) == 0xc000);
    CHECK(fu_float_to_half(0.1f) == 0x2e66);                     /* 0.1 -> 0.0999755859375 */
    CHECK(fu_float_to_half(-0.0f) == 0x8000 && fu_float_to_half(0.0f) == 0);
    CHECK(fu_float_to_half(INFINITY) == 0x7c00 && fu_float_to_half(-INFINITY) == 0xfc00);
    CHECK(fu_float_to_half(1e10f) == 0x7c00 && fu_float_to_half(-1e10f) == 0xfc00);
    CHECK(half_is_nan(fu_float_to_half(NAN)) && half_is_nan(fu_float_to_half(-NAN)));
    CHECK(half_is_nan(fu_float_to_half(bits_float(0x7f800001))));  /* NaN with a low payload only */
    CHECK(fu_float_to_half(ldexpf(1, -30)) == 0);                 /* underflows to zero */
    CHECK(fu_float_to_half(-ldexpf(1, -30)) == 0x8000);           /* ... keeping the sign */
    CHECK(fu_float_to_half(bits_float(1)) == 0);                  /* float subnormal */
}

TEST(half_roundtrip_exhaustive) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fu_half_to_float((uint16_t)h);
        uint16_t back = fu_float_to_half(f);
        if (half_is_nan((uint16_t)h)) bad += !half_is_nan(back) || (back & 0x8000) != (h & 0x8000);
        else bad += back != h;
    }
    CHECK_MSG(bad == 0, "%d half values do not survive half -> float -> half", bad);
}

/* At the midpoint between adjacent halves h and h+1 the result is the even one; just off the
 * midpoint it is the nearer one. Covers subnormals, the subnormal/normal boundary and the top
 * of the range (65504 + half an ulp = 65520 rounds to infinity). Negative values mirror. */
TEST(half_rounds_to_nearest_even) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        double lo = fu_half_to_float((uint16_t)h), hi = h == 0x7bff ? 65536.0 : fu_half_to_float((uint16_t)(h + 1));
        float mid = (float)((lo + hi) / 2);
        REQUIRE((double)mid == (lo + hi) / 2);                  /* midpoints are exact floats */
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        for (int s = 0; s < 2; s++) {
            float sign = s ? -1.0f : 1.0f;
            uint16_t sbit = s ? 0x8000 : 0;
            bad += fu_float_to_half(sign * mid) != (even | sbit);
            bad += fu_float_to_half(sign * nextafterf(mid, 0)) != (h | sbit);
            bad += fu_float_to_half(sign * nextafterf(mid, INFINITY)) != ((h + 1) | sbit);
        }
    }
    CHECK_MSG(bad == 0, "%d half rounding cases wrong", bad);
    CHECK(fu_float_to_half(65519.996f) == 0x7bff && fu_float_to_half(65520.0f) == 0x7c00);
    CHECK(fu_float_to_half(ldexpf(1, -25)) == 0);                 /* tie between 0 and 2^-24 */
    CHECK(fu_float_to_half(ldexpf(3, -25)) == 2);                 /* tie between 1 and 2 units */
}

TEST(bf16_roundtrip_and_rounding) {
    int bad = 0;
    for (uint32_t b = 0; b < 65536; b++) {
        float f = fu_bf16_to_float((uint16_t)b);
        CHECK(float_bits(f) == b << 16);
        int nan = ((b >> 7) & 0xff) == 0xff && (b & 0x7f);
        if (nan) { bad += !isnan(fu_bf16_to_float(fu_float_to_bf16(f))); continue; }
        bad += fu_float_to_bf16(f) != b;
        if (((b >> 7) & 0xff) == 0xff) continue;                  /* infinities: no neighbour above */
        uint16_t even = (b & 1) ? (uint16_t)(b + 1) : (uint16_t)b;
        bad += fu_float_to_bf16(bits_float(b << 16 | 0x8000)) != even;   /* exact tie */
        bad += fu_float_to_bf16(bits_float(b << 16 | 0x7fff)) != b;
        bad += fu_float_to_bf16(bits_float(b << 16 | 0x8001)) != (uint16_t)(b + 1);
    }
    CHECK_MSG(bad == 0, "%d bf16 cases wrong", bad);
    CHECK(fu_float_to_bf16(1.0f) == 0x3f80 && fu_float_to_bf16(-2.0f) == 0xc000);
    CHECK(fu_float_to_bf16(FLT_MAX) == 0x7f80);                  /* rounds up to infinity */
    CHECK(fu_float_to_bf16(-INFINITY) == 0xff80);
    CHECK(isnan(fu_bf16_to_float(fu_float_to_bf16(bits_float(0x7f800001)))));  /* stays NaN */
    CHECK(isnan(fu_bf16_to_float(fu_float_to_bf16(bits_float(0xffffffff)))));
    CHECK(fu_float_to_bf16(bits_float(1)) == 0);                  /* float subnormal rounds to 0 */
}

TEST(convert_to_f32_every_dtype) {
    float out[4];
    const unsigned char f16[] = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c};
    fu_convert_to_f32(FU_F16, f16, out, 4);
    CHECK(out[0] == 1 && out[1] == -2 && out[2] == ldexpf(1, -24) && out[3] == INFINITY);
    const unsigned char bf16[] = {0x80, 0x3f, 0x49, 0x40};
    fu_convert_to_f32(FU_BF16, bf16, out, 2);
    CHECK(out[0] == 1 && out[1] == 3.140625f);
    double d[2] = {-1.5, 1e300};
    fu_convert_to_f32(FU_F64, d, out, 2);
    CHECK(out[0] == -1.5f && out[1] == INFINITY);
    const unsigned char i64[] = {0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x01, 0, 0, 0};
    fu_convert_to_f32(FU_I64, i64, out, 2);
    CHECK(out[0] == -5 && out[1] == 4294967296.0f);
    const unsigned char i32[] = {0xff, 0xff, 0xff, 0x7f, 0x00, 0x00, 0x00, 0x80};
    fu_convert_to_f32(FU_I32, i32, out, 2);
    CHECK(out[0] == 2147483648.0f && out[1] == -2147483648.0f);
    const unsigned char i16[] = {0x00, 0x80, 0x39, 0x30};
    fu_convert_to_f32(FU_I16, i16, out, 2);
    CHECK(out[0] == -32768 && out[1] == 12345);
    const unsigned char bytes[] = {0x80, 0xff, 0x00, 0x01};
    fu_convert_to_f32(FU_I8, bytes, out, 4);
    CHECK(out[0] == -128 && out[1] == -1 && out[2] == 0 && out[3] == 1);
    fu_convert_to_f32(FU_U8, bytes, out, 4);
    CHECK(out[0] == 128 && out[1] == 255 && out[2] == 0 && out[3] == 1);
    fu_convert_to_f32(FU_BOOL, bytes + 2, out, 2);
    CHECK(out[0] == 0 && out[1] == 1);
    const float f32[] = {-0.25f, 7};
    fu_convert_to_f32(FU_F32, f32, out, 2);
    CHECK(out[0] == -0.25f && out[1] == 7);
}

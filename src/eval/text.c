/* A hand-drawn 3x5 font. Each glyph is five rows of three bits, one octal digit per row (top
 * row first, the high bit of each digit is the left pixel): '0' = 075557 reads
 *   ###
 *   #.#
 *   #.#
 *   #.#
 *   ### */
#include "eval/text.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>

static unsigned glyph(char c) {
    static const unsigned digits[10] = {075557, 026227, 071747, 071717, 055711, 074717, 074757, 071111, 075757, 075717};
    static const unsigned letters[26] = {
        025755, 065656, 074447, 065556, 074747, 074744, 074557, 055755, 072227, 011157, 055655, 044447, 057755,
        065555, 075557, 075744, 075571, 065655, 074717, 072222, 055557, 055552, 055775, 055255, 055222, 071247,
    };
    if (isdigit((unsigned char)c)) return digits[c - '0'];
    if (isalpha((unsigned char)c)) return letters[toupper((unsigned char)c) - 'A'];
    switch (c) {
    case '.': return 000002;
    case '=': return 007070;
    case '-': return 000700;
    case ':': return 002020;
    case '_': return 000007;
    default: return 0;
    }
}

int fu_text_width(const char *text, int scale) { return (int)strlen(text) * 4 * scale - scale; }

static void put_pixel(fu_tensor *img, int64_t x, int64_t y, float v) {
    int64_t H = img->shape[2], W = img->shape[3];
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    for (int c = 0; c < 3; c++) img->data[(c * H + y) * W + x] = v;
}

static void fill_rect(fu_tensor *img, int x0, int y0, int w, int h, float v) {
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++) put_pixel(img, x, y, v);
}

void fu_draw_text_cut(fu_tensor *img, int x, int y, int scale, int max_width, const char *text) {
    char cut[128];
    int fits = scale > 0 ? (max_width + scale) / (4 * scale) : 0;
    snprintf(cut, sizeof cut, "%.*s", fits < 127 ? (fits > 0 ? fits : 0) : 127, text);
    fu_draw_text(img, x, y, scale, cut);
}

void fu_draw_text(fu_tensor *img, int x, int y, int scale, const char *text) {
    if (!img || img->ndim != 4 || img->shape[1] != 3 || scale < 1) return;
    fill_rect(img, x - scale, y - scale, fu_text_width(text, scale) + 2 * scale, 7 * scale, 0.1f);
    for (size_t i = 0; text[i]; i++) {
        unsigned bits = glyph(text[i]);
        int gx = x + (int)i * 4 * scale;
        for (int row = 0; row < 5; row++)
            for (int col = 0; col < 3; col++)
                if (bits >> ((4 - row) * 3 + (2 - col)) & 1) fill_rect(img, gx + col * scale, y + row * scale, scale, scale, 1.0f);
    }
}

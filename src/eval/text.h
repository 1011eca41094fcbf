/* Labels on images (comparison sheets): a built-in 3x5 pixel font, drawn scaled, white on a
 * dark box. Letters are drawn in one case; digits, space and . = - : _ are supported, other
 * characters are drawn as blanks. */
#ifndef FU_EVAL_TEXT_H
#define FU_EVAL_TEXT_H
#include "core/tensor.h"

/* Width in pixels of text drawn at scale (each glyph 3 pixels plus 1 of spacing). */
int fu_text_width(const char *text, int scale);
/* Draws text into img [1,3,H,W] (values in [0,1]) with its top-left corner at (x, y) on a box
 * of 0.1 grey one pixel-scale wider on every side; clipped at the image border. */
void fu_draw_text(fu_tensor *img, int x, int y, int scale, const char *text);
/* fu_draw_text of the first characters of text that fit in max_width pixels (a sheet's cell). */
void fu_draw_text_cut(fu_tensor *img, int x, int y, int scale, int max_width, const char *text);

#endif

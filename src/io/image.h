/* Image files: PNG and JPEG in, PNG and JPEG out.
 *
 * Decoded images are float32 tensors [1,3,H,W] (NCHW, RGB) with values in [0,1]: 8-bit samples
 * are divided by 255, 16-bit PNG samples by 65535; gray is replicated to RGB, alpha (and PNG
 * transparency) is dropped, gamma/colour-profile chunks are ignored. A JPEG's EXIF orientation
 * tag (1-8) is applied, so the tensor is upright as a viewer would show it. CMYK JPEGs are refused.
 *
 * Decompression bombs: the dimensions are checked against a pixel limit (width*height, default
 * FU_IMAGE_DEFAULT_MAX_PIXELS) straight from the header, before anything image-sized is allocated.
 * Corrupt or truncated data gives FU_E_INPUT and a one-line message naming the file.
 *
 * Writers take [1,3,H,W] or [3,H,W], clamp to [0,1], scale by 255 and round to nearest (NaN -> 0),
 * and write atomically (see fileutil.h): on any error no file is left behind. */
#ifndef FU_IMAGE_H
#define FU_IMAGE_H
#include <stddef.h>
#include <stdint.h>
#include "core/tensor.h"

#define FU_IMAGE_DEFAULT_MAX_PIXELS ((int64_t)100 * 1000 * 1000)

/* Process-wide pixel limit for decoding; n <= 0 restores the default. */
void fu_image_set_max_pixels(int64_t n);
int64_t fu_image_max_pixels(void);

/* Reads a PNG or JPEG file (recognised by its signature, not its name). */
fu_tensor *fu_image_load(const char *path);
/* Same from bytes in memory; label names the source in messages. */
fu_tensor *fu_image_decode(const void *data, size_t size, const char *label);

int fu_image_save_png(const char *path, const fu_tensor *img);
int fu_image_save_jpeg(const char *path, const fu_tensor *img, int quality);   /* quality 1..100 */

/* Orientation (1-8) from a JPEG APP1 payload (starting "Exif\0\0"); 1 when absent or invalid. */
int fu_exif_orientation(const unsigned char *app1, size_t size);

#endif

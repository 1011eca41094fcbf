/* Face alignment as differentiable warps: a transform from 68 landmarks (dlib's layout, image
 * pixel coordinates, x y per point), then fu_affine_warp, so gradients flow from the aligned
 * crop back to the source image.
 *
 * Transforms are 2x3 affine maps t[6] (face/transform2d.h).
 * "theta" is the map the warp needs, from an output pixel (u, v) to a source pixel (pixel
 * index coordinates: an integer is a pixel centre).
 *
 * Modes (size N is the output side):
 *   FFHQ    the FFHQ data set's recipe (ffhq-dataset's recreate_aligned_images):
 *             eL, eR = mean of points 36-41 and 42-47;  e = (eL + eR)/2;  d = eR - eL
 *             m = (point 48 + point 54)/2;  em = m - e
 *             x = d + (em.y, -em.x), rescaled to length max(2|d|, 1.8|em|);  y = (-x.y, x.x)
 *             c = e + 0.1 em;  the output square covers the quad c-x-y (top left), c+x-y
 *             (top right), c+x+y, c-x+y, i.e. side 2|x|. As the recipe maps the quad's
 *             corners to the output's corners, pixel centres sample
 *             (c - x - y) + (2x)(u + 0.5)/N + (2y)(v + 0.5)/N.
 *             (The recipe's shrink/pad/blur steps for big or out-of-frame quads are not done:
 *             outside the image reads 0.)
 *   DLIB    dlib's get_face_chip_details for 68-point shapes with padding 0.25 (the input of
 *             dlib's ResNet face recogniser at N = 150): 33 of the 68 points (nose 27-35, eyes
 *             36-47, outer lip 48-54, upper inner lip 60-64; not the jaw, eyebrows or lower
 *             lip) against dlib's mean face positions r (unit square), mapped to chip
 *             positions ((0.25 + r) / 1.5) * N; with T the least-squares similarity from those
 *             chip positions to the image points (scale s, rotation R), theta is the map
 *             dlib's extract_image_chip samples: chip pixel p -> T(N/2, N/2) + k R (p - (N-1)/2),
 *             k = (N s - 1)/(N - 1) (dlib's chip rectangle has side N s - 1 and its corners go
 *             to chip pixels 0 and N-1). dlib's pyramid pre-blur for large downscales is not
 *             done here. (dlib's 5-point variant, on the eye corners and nose base alone, places
 *             the chip 3.3 px (median) away from this one on LFW and lost 0.4% LFW accuracy.)
 *   ARCFACE the insightface 112x112 template (left eye, right eye, nose tip, left and right
 *             mouth corners at (38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366),
 *             (41.5493, 92.3655), (70.7299, 92.2041)), scaled by N/112; the image points are
 *             the eye centres (means of 36-41, 42-47), the nose tip (30) and the mouth corners
 *             (48, 54). As insightface does, the similarity is fitted from image to template
 *             and theta is its inverse. */
#ifndef FU_ALIGN_H
#define FU_ALIGN_H
#include "core/graph.h"
#include "face/transform2d.h"

typedef enum { FU_ALIGN_FFHQ, FU_ALIGN_DLIB, FU_ALIGN_ARCFACE } fu_align_mode;

/* Name ("ffhq", "dlib", "arcface") to mode; -1 if unknown. */
int fu_align_mode_parse(const char *name);
const char *fu_align_mode_name(fu_align_mode mode);

/* theta for the mode (output pixel -> source pixel) from 68 landmarks. FU_E_INPUT for a
 * degenerate face (coincident eyes, non-finite points) or size < 8. */
int fu_align_theta(fu_align_mode mode, const float *lm68, int size, double theta[6]);
/* Warps img [N,C,H,W] (N = 1) with theta to [1,C,size,size] as a graph op (gradients flow to
 * img). NULL with a message on error. */
fu_tensor *fu_align_warp(fu_graph *g, fu_tensor *img, const double theta[6], int size);
/* fu_align_theta + fu_align_warp; theta_out (may be NULL) receives the transform. */
fu_tensor *fu_align_face(fu_graph *g, fu_tensor *img, const float *lm68, fu_align_mode mode, int size,
                         double theta_out[6]);

#endif

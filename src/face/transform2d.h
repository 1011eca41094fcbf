/* 2-D affine maps t[6]: x' = t0 x + t1 y + t2, y' = t3 x + t4 y + t5 (face alignment and the
 * landmark predictor's shape-to-shape similarity). */
#ifndef FU_TRANSFORM2D_H
#define FU_TRANSFORM2D_H

/* Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping
 * from[i] to to[i], points as x y pairs, n >= 1 (Umeyama's solution, as dlib's
 * find_similarity_transform). When all from-points coincide the scale is 1 and the rotation 0. */
void fu_similarity_fit(const float *from, const float *to, int n, double t[6]);
/* Inverse of an affine map; FU_E_INPUT when it is singular. */
int fu_affine_invert(const double t[6], double inv[6]);
/* Applies t to (x, y). */
void fu_affine_apply(const double t[6], double x, double y, double *ox, double *oy);

#endif

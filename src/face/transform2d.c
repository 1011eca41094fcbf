/* 2-D affine helpers (see transform2d.h). */
#include "transform2d.h"
#include <math.h>
#include "core/error.h"
#include "faceup.h"

/* Closed form of the 2-D similarity least squares on centred points p (from) and q (to):
 * a = sum(p.q) / sum|p|^2, b = sum(p x q) / sum|p|^2, map = [a -b; b a] p + t. This is the
 * solution Umeyama's SVD form gives in 2-D (its rotation is always proper). */
void fu_similarity_fit(const float *from, const float *to, int n, double t[6]) {
    double mfx = 0, mfy = 0, mtx = 0, mty = 0;
    for (int i = 0; i < n; i++) {
        mfx += from[2 * i]; mfy += from[2 * i + 1];
        mtx += to[2 * i];   mty += to[2 * i + 1];
    }
    mfx /= n; mfy /= n; mtx /= n; mty /= n;
    double dot = 0, cross = 0, norm = 0;
    for (int i = 0; i < n; i++) {
        double px = from[2 * i] - mfx, py = from[2 * i + 1] - mfy;
        double qx = to[2 * i] - mtx, qy = to[2 * i + 1] - mty;
        dot += px * qx + py * qy;
        cross += px * qy - py * qx;
        norm += px * px + py * py;
    }
    double a = norm > 0 ? dot / norm : 1, b = norm > 0 ? cross / norm : 0;
    t[0] = a; t[1] = -b; t[2] = mtx - (a * mfx - b * mfy);
    t[3] = b; t[4] = a;  t[5] = mty - (b * mfx + a * mfy);
}

int fu_affine_invert(const double t[6], double inv[6]) {
    double det = t[0] * t[4] - t[1] * t[3];
    if (!isfinite(det) || fabs(det) < 1e-12) return fu_fail(FU_E_INPUT, "align: singular transform");
    inv[0] = t[4] / det;  inv[1] = -t[1] / det;
    inv[3] = -t[3] / det; inv[4] = t[0] / det;
    inv[2] = -(inv[0] * t[2] + inv[1] * t[5]);
    inv[5] = -(inv[3] * t[2] + inv[4] * t[5]);
    return FU_OK;
}

void fu_affine_apply(const double t[6], double x, double y, double *ox, double *oy) {
    *ox = t[0] * x + t[1] * y + t[2];
    *oy = t[3] * x + t[4] * y + t[5];
}


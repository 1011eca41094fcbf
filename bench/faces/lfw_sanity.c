/* Quick sanity check of dlib-resnet on LFW (not a test, and not the LFW evaluation: no detection
 * or alignment, so expect less than the published 99.38%). For the first N same-person and N
 * different-person pairs of pairs.txt (fold 1), takes the central 150x150 of each deep-funneled
 * 250x250 image, computes the descriptors, and prints the Euclidean distances' summary and the
 * accuracy at dlib's same-person threshold 0.6.
 *
 *   lfw_sanity MODELS_DIR LFW_DIR [N]      (built and run by bench/faces/lfw_sanity.sh) */
#include "faceup.h"
#include "core/ops.h"
#include "face/dlib_resnet.h"
#include "io/image.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S FU_DLIB_RESNET_SIZE

/* Central SxS crop of an LFW image into image k of the batch x [2,3,S,S]. */
static int centre_crop(const char *lfw, const char *name, int index, fu_tensor *x, int k) {
    char path[4096];
    snprintf(path, sizeof path, "%s/images/%s/%s_%04d.jpg", lfw, name, name, index);
    fu_tensor *img = fu_image_load(path);
    if (!img) return 0;
    int64_t H = img->shape[2], W = img->shape[3], y0 = (H - S) / 2, x0 = (W - S) / 2;
    int ok = H >= S && W >= S;
    for (int64_t c = 0; ok && c < 3; c++)
        for (int64_t y = 0; y < S; y++)
            memcpy(x->data + ((k * 3 + c) * S + y) * S, img->data + (c * H + y0 + y) * W + x0, S * sizeof(float));
    fu_tensor_free(img);
    return ok;
}

static double distance(const float *a, const float *b) {
    double sum = 0;
    for (int i = 0; i < FU_DLIB_RESNET_DIM; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(sum);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: lfw_sanity MODELS_DIR LFW_DIR [N]\n");
        return 2;
    }
    int n = argc > 3 ? atoi(argv[3]) : 20;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", argv[1], FU_DLIB_RESNET_MANIFEST);
    fu_dlib_resnet *net = fu_dlib_resnet_load(path);
    snprintf(path, sizeof path, "%s/pairs.txt", argv[2]);
    FILE *f = fopen(path, "r");
    if (!net || !f) {
        fprintf(stderr, "lfw_sanity: %s\n", net ? path : fu_last_error());
        return 2;
    }
    /* one graph for every pair: re-run with new pixels (no re-planning of the convolutions) */
    fu_tensor *x = fu_tensor_newv(4, (int64_t)2, (int64_t)3, (int64_t)S, (int64_t)S);
    fu_graph *g = fu_graph_new();
    fu_tensor *d = x && g ? fu_dlib_resnet_forward(net, g, x) : NULL;
    if (!d) {
        fprintf(stderr, "lfw_sanity: %s\n", fu_last_error());
        return 3;
    }
    char line[512], a[200], b[200];
    double sum[2] = {0, 0}, lo[2] = {1e9, 1e9}, hi[2] = {0, 0};
    int count[2] = {0, 0}, correct = 0;
    for (int row = 0; fgets(line, sizeof line, f) && row <= 600; row++) {
        int i, j, same;
        if (sscanf(line, "%199s %d %199s %d", a, &i, b, &j) == 4) same = 0;
        else if (sscanf(line, "%199s %d %d", a, &i, &j) == 3) { same = 1; strcpy(b, a); }
        else continue;
        if (count[!same] >= n) continue;
        if (!centre_crop(argv[2], a, i, x, 0) || !centre_crop(argv[2], b, j, x, 1) || fu_graph_forward(g)) {
            fprintf(stderr, "lfw_sanity: %s\n", fu_last_error());
            return 3;
        }
        double dist = distance(d->data, d->data + FU_DLIB_RESNET_DIM);
        int k = !same;
        count[k]++;
        sum[k] += dist;
        lo[k] = fmin(lo[k], dist);
        hi[k] = fmax(hi[k], dist);
        correct += same ? dist < 0.6 : dist >= 0.6;
        printf("%s %s_%04d %s_%04d %.3f\n", same ? "same" : "diff", a, i, b, j, dist);
    }
    fclose(f);
    for (int k = 0; k < 2; k++)
        printf("%s: %d pairs, distance mean %.3f, min %.3f, max %.3f\n", k ? "different" : "same", count[k],
               count[k] ? sum[k] / count[k] : NAN, lo[k], hi[k]);
    printf("accuracy at threshold 0.6: %d/%d = %.1f%%\n", correct, count[0] + count[1], 100.0 * correct / (count[0] + count[1]));
    fu_graph_free(g);
    fu_tensor_free(x);
    fu_dlib_resnet_free(net);
    return 0;
}

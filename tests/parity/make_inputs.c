/* Writes the parity inputs: for each model, a batch of real faces resized to the model's input
 * size, as NHWC float32 in <out_dir>/<model>.inputs.safetensors ("input"), with the output node
 * names in the metadata ("outputs", comma-separated). Both the TF.js script (run.mjs) and the C
 * test (tests/test_tfjs.c) read this one file, so both sides see identical floats.
 *
 * A dither of +-0.1% of the range (a fixed hash of the element index) is added: real photos
 * have flat areas (UTKFace's black borders, saturated skies) where neighbouring activations tie
 * exactly, and max pooling may route the gradient of a tie to either cell; TF.js and the engine
 * then pick different cells (both valid subgradients) and the input gradients differ there.
 *
 * Faces: the first LFW pictures (person folders in name order, central 128x128 of the 250x250
 * frame, where LFW puts the face) alternating with the first UTKFace crops (whole 200x200).
 * Built and run by tools/parity.sh:  make_inputs <shared_data_dir> <out_dir> */
#include "core/error.h"
#include "io/image.h"
#include "io/safetensors.h"
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int size, channels, batch;
    float lo, hi;           /* pixel range the model is fed (human's preprocessing) */
    const char *outputs;
} model_spec;

static const model_spec models[] = {
    {"faceres", 224, 3, 10, 0, 1, "gender_pred/Sigmoid,global_pooling/Mean,age_pred/Softmax"},
    {"gear", 198, 3, 10, 0, 1, "Identity,Identity_1,Identity_2"},
    {"emotion", 64, 1, 4, -1, 1, "Identity"},
    {"blazeface", 256, 3, 1, -1, 1, "Identity,Identity_1,Identity_2,Identity_3"},
    {"faceres-deep", 224, 3, 4, 0, 1, "gender_pred/Sigmoid,global_pooling/Mean,age_pred/Softmax"},
    {"facemesh", 192, 3, 4, 0, 1, "Identity,Identity_1,Identity_2"},
    {"age", 64, 3, 4, 0, 1, "Identity"},
    {"gender", 64, 1, 4, -1, 1, "Identity"},
    {"mobileface", 112, 3, 4, -1, 1, "batchnorm0/add_1"},
    {"mobilefacenet", 112, 3, 4, -1, 1, "embeddings"},
    /* dlib's face recognition ResNet (tests/parity/dlib_resnet.mjs runs face-api itself) */
    {"dlib-resnet", 150, 3, 20, 0, 1, "descriptor"},
};

#define MAX_FACES 20

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted entry names of a folder (no dot files); returns the count (<= cap). */
static int list_dir(const char *dir, char **names, int cap) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0, all = 0;
    char **tmp = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char **grown = realloc(tmp, (size_t)(all + 1) * sizeof *tmp);
        if (!grown) break;
        tmp = grown;
        tmp[all++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(tmp, (size_t)all, sizeof *tmp, cmp_str);
    for (int i = 0; i < all; i++) {
        if (n < cap) names[n++] = tmp[i];
        else free(tmp[i]);
    }
    free(tmp);
    return n;
}

/* Loads face k (even: LFW, odd: UTKFace) as [1,3,h,w] cropped to the face square. */
static fu_tensor *load_face(const char *data, int k, int *x0, int *y0, int *side) {
    char *names[MAX_FACES];
    char path[4096], sub[2048];
    fu_tensor *img = NULL;
    if (k % 2 == 0) {
        snprintf(sub, sizeof sub, "%s/lfw/images", data);
        int n = list_dir(sub, names, MAX_FACES);
        if (k / 2 < n) {
            snprintf(path, sizeof path, "%s/%s/%s_0001.jpg", sub, names[k / 2], names[k / 2]);
            img = fu_image_load(path);
        }
        for (int i = 0; i < n; i++) free(names[i]);
        *side = 128;
    } else {
        snprintf(sub, sizeof sub, "%s/utkface/images", data);
        int n = list_dir(sub, names, MAX_FACES);
        if (k / 2 < n) {
            snprintf(path, sizeof path, "%s/%s", sub, names[k / 2]);
            img = fu_image_load(path);
        }
        for (int i = 0; i < n; i++) free(names[i]);
        *side = img ? (int)(img->shape[2] < img->shape[3] ? img->shape[2] : img->shape[3]) : 0;
    }
    if (img) {
        *y0 = (int)(img->shape[2] - *side) / 2;
        *x0 = (int)(img->shape[3] - *side) / 2;
    }
    return img;
}

/* Bilinear sample (half-pixel centres, edge clamped) of channel c of the crop. */
static float sample(const fu_tensor *img, int c, int x0, int y0, int side, float fx, float fy) {
    int64_t H = img->shape[2], W = img->shape[3];
    float sx = fx - 0.5f, sy = fy - 0.5f;
    int ix = (int)floorf(sx), iy = (int)floorf(sy);
    float ax = sx - (float)ix, ay = sy - (float)iy, v = 0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int yy = iy + dy, xx = ix + dx;
            yy = yy < 0 ? 0 : yy >= side ? side - 1 : yy;
            xx = xx < 0 ? 0 : xx >= side ? side - 1 : xx;
            float wgt = (dx ? ax : 1 - ax) * (dy ? ay : 1 - ay);
            v += wgt * img->data[(c * H + y0 + yy) * W + x0 + xx];
        }
    return v;
}

/* Deterministic value in [-1, 1) from an index (SplitMix64 finaliser). */
static float dither(uint64_t i) {
    uint64_t z = i + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) / (float)(1 << 23) - 1.0f;
}

static int write_model(const char *data, const char *out_dir, const model_spec *m) {
    int64_t shape[4] = {m->batch, m->size, m->size, m->channels};
    fu_tensor *x = fu_tensor_new(4, shape);
    if (!x) return 1;
    for (int b = 0; b < m->batch; b++) {
        int x0 = 0, y0 = 0, side = 0;
        fu_tensor *img = load_face(data, b, &x0, &y0, &side);
        if (!img) { fprintf(stderr, "make_inputs: face %d: %s\n", b, fu_last_error()); fu_tensor_free(x); return 1; }
        float scale = (float)side / (float)m->size;
        for (int y = 0; y < m->size; y++)
            for (int xx = 0; xx < m->size; xx++) {
                float rgb[3];
                for (int c = 0; c < 3; c++) rgb[c] = sample(img, c, x0, y0, side, ((float)xx + 0.5f) * scale, ((float)y + 0.5f) * scale);
                float *px = x->data + (((int64_t)b * m->size + y) * m->size + xx) * m->channels;
                if (m->channels == 1) rgb[0] = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
                for (int c = 0; c < m->channels; c++) {
                    uint64_t idx = (uint64_t)(px - x->data) + (uint64_t)c;
                    px[c] = m->lo + (m->hi - m->lo) * (rgb[c] + 1e-3f * dither(idx));
                }
            }
        fu_tensor_free(img);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.inputs.safetensors", out_dir, m->name);
    fu_st_item item = {"input", x, FU_F32};
    fu_st_meta meta[2] = {{"outputs", m->outputs}, {"model", m->name}};
    int rc = fu_st_save(path, &item, 1, meta, 2);
    if (rc) fprintf(stderr, "make_inputs: %s\n", fu_last_error());
    fu_tensor_free(x);
    return rc != 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: make_inputs <shared_data_dir> <out_dir>\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof models / sizeof *models; i++)
        if (write_model(argv[1], argv[2], &models[i])) return 1;
    return 0;
}

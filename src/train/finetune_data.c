/* Cached chips, crops, teacher descriptors and look-alikes of the fine-tune (see
 * finetune_data.h). */
#include "finetune_data.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "face/align.h"
#include "face/face_pipeline.h"
#include "face/heads.h"
#include "faceup.h"
#include "gen/generator.h"
#include "io/fileutil.h"
#include "io/image.h"
#include "search/search.h"

#define MAGIC "FUXCHIP1"
#define HEAD_BYTES (FU_FACES_PATH_LEN + 8 + 16 + 128 * 4)
#define FU_XREC_BYTES (HEAD_BYTES + FU_XCHIP_BYTES + 2 * FU_XFFHQ_BYTES)
#define FFHQ_OVERSAMPLE 4
#define TEACHER_BATCH 16
#define CELEBA_VAL_LAST 9250   /* CelebA 009001-009250: val, 009251-009500: test */

fu_xdata_config fu_xdata_defaults(void) {
    return (fu_xdata_config){.per_race = 400, .celeba_every = 6, .lookalikes_train = 400, .lookalikes_test = 120, .holdout_every = 1};
}

int fu_xsplit(const fu_face_label *label, int64_t utk_ordinal) {
    if (label->source == FU_FACES_LFW) return FU_XSPLIT_NONE;
    if (label->split == FU_SPLIT_TRAIN) return FU_XSPLIT_TRAIN;
    if (label->source == FU_FACES_CELEBA) {
        const char *slash = strrchr(label->path, '/');
        long num = strtol(slash ? slash + 1 : label->path, NULL, 10);
        return num <= CELEBA_VAL_LAST ? FU_XSPLIT_VAL : FU_XSPLIT_TEST;
    }
    return (utk_ordinal / 20) % 2 == 0 ? FU_XSPLIT_VAL : FU_XSPLIT_TEST;
}

void fu_xdata_to_float(const uint8_t *src, int64_t n, float *dst) {
    for (int64_t i = 0; i < n; i++) dst[i] = (float)src[i] * (1.0f / 255.0f);
}

static void to_u8(const float *src, int64_t n, uint8_t *dst) {
    for (int64_t i = 0; i < n; i++) {
        float v = src[i] * 255.0f + 0.5f;
        dst[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* ------------------------------------------------------------------ selection */

/* Marks which labels go into the set: the train subsample and all of val and test. split[i]
 * gets the extractor split or FU_XSPLIT_NONE. */
static void select_faces(const fu_face_label *labels, int64_t n, const fu_xdata_config *cfg, uint8_t *split) {
    int64_t per_race[FU_RACE_CLASSES] = {0}, seen[FU_RACE_CLASSES] = {0}, utk = 0, celeba = 0, held = 0;
    for (int64_t i = 0; i < n; i++)
        if (labels[i].source == FU_FACES_UTKFACE && labels[i].split == FU_SPLIT_TRAIN && labels[i].race >= 0 && labels[i].race < FU_RACE_CLASSES)
            per_race[labels[i].race]++;
    for (int64_t i = 0; i < n; i++) {
        const fu_face_label *l = &labels[i];
        int s = fu_xsplit(l, utk);
        if (l->source == FU_FACES_UTKFACE) utk++;
        if (s == FU_XSPLIT_TRAIN && l->source == FU_FACES_UTKFACE) {
            int r = l->race;
            if (r < 0 || r >= FU_RACE_CLASSES) s = FU_XSPLIT_NONE;
            else {
                int64_t every = (per_race[r] + cfg->per_race - 1) / cfg->per_race;
                if (seen[r]++ % (every ? every : 1)) s = FU_XSPLIT_NONE;
            }
        } else if (s == FU_XSPLIT_TRAIN && l->source == FU_FACES_CELEBA && celeba++ % cfg->celeba_every) s = FU_XSPLIT_NONE;
        else if ((s == FU_XSPLIT_VAL || s == FU_XSPLIT_TEST) && held++ % cfg->holdout_every) s = FU_XSPLIT_NONE;
        split[i] = (uint8_t)s;
    }
}

/* ------------------------------------------------------------------ one face */

static int alloc_pixels(fu_xdata *d, int64_t n) {
    d->f = calloc((size_t)(n ? n : 1), sizeof *d->f);
    d->pixels = calloc((size_t)(n ? n : 1), FU_XCHIP_BYTES + 2 * FU_XFFHQ_BYTES);
    if (!d->f || !d->pixels) return fu_fail(FU_E_INTERNAL, "out of memory (%lld faces)", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        d->f[i].chip = d->pixels + (size_t)i * (FU_XCHIP_BYTES + 2 * FU_XFFHQ_BYTES);
        d->f[i].ffhq = d->f[i].chip + FU_XCHIP_BYTES;
        d->f[i].lookalike = d->f[i].ffhq + FU_XFFHQ_BYTES;
    }
    return FU_OK;
}

/* dlib chip and FFHQ 64 crop of the face with landmarks lm. */
static int cut_face(fu_tensor *img, const float *lm, fu_xface *f) {
    fu_graph *g = fu_graph_new();
    double theta[6];
    int side = FU_XFFHQ * FFHQ_OVERSAMPLE;
    fu_tensor *chip = g ? fu_align_face(g, img, lm, FU_ALIGN_DLIB, FU_XCHIP, NULL) : NULL;
    int rc = chip ? fu_align_theta(FU_ALIGN_FFHQ, lm, side, theta) : (fu_last_code() ? fu_last_code() : FU_E_INTERNAL);
    fu_tensor *big = rc == FU_OK ? fu_align_warp(g, img, theta, side) : NULL;
    fu_tensor *small = big ? fu_resize_area(g, big, FU_XFFHQ, FU_XFFHQ) : NULL;
    if (rc == FU_OK && !small) rc = fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    if (rc == FU_OK) {
        to_u8(chip->data, FU_XCHIP_BYTES, f->chip);
        to_u8(small->data, FU_XFFHQ_BYTES, f->ffhq);
    }
    fu_graph_free(g);
    return rc;
}

/* FU_OK with *found = 0 when no face is detected (or its landmarks are degenerate). */
static int extract_one(const fu_face_pipeline *p, const char *path, fu_xface *f, int *found) {
    fu_tensor *img = fu_image_load(path);
    if (!img) return fu_last_code() ? fu_last_code() : FU_E_INPUT;
    float lm[136];
    int rc = fu_face_pipeline_landmarks(p, img, path, lm);
    if (rc == FU_OK) rc = cut_face(img, lm, f);
    *found = rc == FU_OK;
    if (rc == FU_E_INPUT) rc = FU_OK;
    fu_tensor_free(img);
    return rc;
}

/* The original network's descriptors of the stored (u8) chips. */
static int teachers(const fu_face_pipeline *p, fu_xdata *d) {
    int rc = FU_OK;
    for (int64_t i = 0; i < d->n && rc == FU_OK; i += TEACHER_BATCH) {
        int64_t b = d->n - i < TEACHER_BATCH ? d->n - i : TEACHER_BATCH;
        fu_graph *g = fu_graph_new();
        fu_tensor *x = g ? fu_graph_tensor(g, 4, (int64_t[]){b, 3, FU_XCHIP, FU_XCHIP}) : NULL;
        for (int64_t k = 0; x && k < b; k++) fu_xdata_to_float(d->f[i + k].chip, FU_XCHIP_BYTES, x->data + k * FU_XCHIP_BYTES);
        fu_tensor *y = x ? fu_dlib_resnet_forward(p->net, g, x) : NULL;
        if (!y) rc = fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
        for (int64_t k = 0; y && k < b; k++) memcpy(d->f[i + k].teacher, y->data + k * 128, 128 * sizeof(float));
        fu_graph_free(g);
    }
    return rc;
}


static int extract_all(const char *data_dir, const fu_face_label *labels, const uint8_t *split, int64_t n_sel, fu_xdata *d,
                       fu_progress_fn progress, void *ctx) {
    fu_face_pipeline pipe;
    int rc = fu_face_pipeline_open(&pipe);
    int64_t done = 0;
    for (int64_t i = 0; rc == FU_OK && done < n_sel; i++) {
        if (split[i] == FU_XSPLIT_NONE) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", data_dir, labels[i].path);
        fu_xface *f = &d->f[d->n];
        int found = 0;
        rc = extract_one(&pipe, path, f, &found);
        if (rc == FU_OK && found) {
            memcpy(f->path, labels[i].path, sizeof f->path);
            f->source = labels[i].source, f->split = split[i], f->race = labels[i].race;
            f->attrs = labels[i].attrs, f->attrs_known = labels[i].attrs_known;
            d->n++;
        }
        done++;
        if (progress && (done % 16 == 0 || done == n_sel)) progress(ctx, done, n_sel, "faces");
    }
    if (rc == FU_OK) rc = teachers(&pipe, d);
    fu_face_pipeline_close(&pipe);
    return rc;
}

/* ------------------------------------------------------------------ look-alikes */

static int lookalike(const fu_generator *gen, const fu_search_config *cfg, fu_xface *f) {
    fu_graph *g = fu_graph_new();
    fu_tensor *crop = g ? fu_graph_tensor(g, 4, (int64_t[]){1, 3, FU_XFFHQ, FU_XFFHQ}) : NULL;
    if (crop) fu_xdata_to_float(f->ffhq, FU_XFFHQ_BYTES, crop->data);
    fu_tensor *thumb = crop ? fu_bicubic_downsample(g, crop, 4) : NULL;
    fu_search_result res;
    int rc = thumb ? fu_search_run(gen, thumb, cfg, &res) : (fu_last_code() ? fu_last_code() : FU_E_INTERNAL);
    if (rc == FU_OK) {
        to_u8(res.image->data, FU_XFFHQ_BYTES, f->lookalike);
        f->has_lookalike = 1;
        fu_search_results_free(&res, 1);
    }
    fu_graph_free(g);
    return rc;
}

/* Look-alikes for `want` faces of split, spread evenly over them. */
static int lookalikes_of_split(const fu_generator *gen, const fu_search_config *cfg, fu_xdata *d, int split, int want,
                               fu_progress_fn progress, void *ctx) {
    int64_t n = 0, k = 0, made = 0;
    for (int64_t i = 0; i < d->n; i++) n += d->f[i].split == split;
    if (want > n) want = (int)n;
    int rc = FU_OK;
    for (int64_t i = 0; i < d->n && rc == FU_OK && made < want; i++) {
        if (d->f[i].split != split) continue;
        if (k++ != made * n / want) continue;
        rc = lookalike(gen, cfg, &d->f[i]);
        made++;
        if (progress) progress(ctx, made, want, split == FU_XSPLIT_TRAIN ? "look-alikes (train)" : "look-alikes (test)");
    }
    return rc;
}

static int open_generator(const char *generator_path, fu_generator **gen) {
    int rc = fu_generator_open(generator_path, NULL, gen);
    if (rc == FU_OK && (*gen)->resolution != FU_XFFHQ)
        rc = fu_fail(FU_E_INPUT, "%s: look-alikes need a %dx%d generator (this one makes %d)", generator_path, FU_XFFHQ, FU_XFFHQ, (*gen)->resolution);
    return rc;
}

static int make_lookalikes(fu_generator *gen, const fu_xdata_config *c, fu_xdata *d, fu_progress_fn progress, void *ctx) {
    int rc = FU_OK;
    fu_search_config cfg = fu_search_defaults();
    if (rc == FU_OK) rc = fu_loss_parse("100*L2", &cfg.loss);
    if (rc == FU_OK) rc = lookalikes_of_split(gen, &cfg, d, FU_XSPLIT_TRAIN, c->lookalikes_train, progress, ctx);
    if (rc == FU_OK) rc = lookalikes_of_split(gen, &cfg, d, FU_XSPLIT_TEST, c->lookalikes_test, progress, ctx);
    return rc;
}

int fu_xdata_build(const char *data_dir, const char *generator_path, const fu_xdata_config *cfg, fu_xdata *out,
                   fu_progress_fn progress, void *ctx) {
    memset(out, 0, sizeof *out);
    if (cfg->per_race < 1 || cfg->celeba_every < 1 || cfg->holdout_every < 1 || cfg->lookalikes_train < 0 || cfg->lookalikes_test < 0)
        return fu_fail(FU_E_INPUT, "fine-tune data: per-race, celeba-every and holdout-every must be positive, look-alike counts >= 0");
    fu_face_label *labels = NULL;
    int64_t n = 0, n_sel = 0;
    int rc = fu_faces_list(data_dir, &labels, &n);
    uint8_t *split = rc == FU_OK ? malloc((size_t)(n ? n : 1)) : NULL;
    if (rc == FU_OK && !split) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) {
        select_faces(labels, n, cfg, split);
        for (int64_t i = 0; i < n; i++) n_sel += split[i] != FU_XSPLIT_NONE;
        rc = alloc_pixels(out, n_sel);
    }
    /* the generator is opened first, so a wrong path fails before the long extraction */
    fu_generator *gen = NULL;
    int looks = cfg->lookalikes_train + cfg->lookalikes_test > 0;
    if (rc == FU_OK && looks) rc = open_generator(generator_path, &gen);
    if (rc == FU_OK) rc = extract_all(data_dir, labels, split, n_sel, out, progress, ctx);
    if (rc == FU_OK && out->n == 0) rc = fu_fail(FU_E_INPUT, "%s: no face found in the selected CelebA/UTKFace images", data_dir);
    if (rc == FU_OK && looks) rc = make_lookalikes(gen, cfg, out, progress, ctx);
    fu_generator_free(gen);
    free(labels);
    free(split);
    if (rc != FU_OK) fu_xdata_free(out);
    return rc;
}

/* ------------------------------------------------------------------ file */

static void put_u64(uint8_t *p, uint64_t v) {
    for (int k = 0; k < 8; k++) p[k] = (uint8_t)(v >> (8 * k));
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static void pack_head(const fu_xface *f, uint8_t *p) {
    memset(p, 0, HEAD_BYTES);
    memcpy(p, f->path, FU_FACES_PATH_LEN);
    p += FU_FACES_PATH_LEN;
    p[0] = f->source, p[1] = f->split, p[2] = (uint8_t)f->race, p[3] = f->has_lookalike;
    put_u64(p + 8, f->attrs);
    put_u64(p + 16, f->attrs_known);
    memcpy(p + 24, f->teacher, sizeof f->teacher);   /* little-endian hosts only (as the cache files) */
}

static int unpack_head(const uint8_t *p, fu_xface *f, const char *path, int64_t i) {
    memcpy(f->path, p, FU_FACES_PATH_LEN);
    f->path[FU_FACES_PATH_LEN - 1] = 0;
    p += FU_FACES_PATH_LEN;
    f->source = p[0], f->split = p[1], f->race = (int8_t)p[2], f->has_lookalike = p[3];
    f->attrs = get_u64(p + 8);
    f->attrs_known = get_u64(p + 16);
    memcpy(f->teacher, p + 24, sizeof f->teacher);
    if (f->source >= FU_FACES_LFW || f->split >= FU_XSPLIT_NONE || f->has_lookalike > 1 || f->race >= FU_RACE_CLASSES)
        return fu_fail(FU_E_INPUT, "%s: record %lld has an invalid source, split or label", path, (long long)i);
    for (int k = 0; k < 128; k++)
        if (!isfinite(f->teacher[k]))
            return fu_fail(FU_E_INPUT, "%s: record %lld has a non-finite descriptor", path, (long long)i);
    return FU_OK;
}

int fu_xdata_save(const fu_xdata *d, const char *path) {
    fu_atomic_file af;
    int rc = fu_atomic_open(&af, path);
    if (rc != FU_OK) return rc;
    uint8_t head[HEAD_BYTES], count[8];
    put_u64(count, (uint64_t)d->n);
    int ok = fwrite(MAGIC, 1, 8, af.f) == 8 && fwrite(count, 1, 8, af.f) == 8;
    for (int64_t i = 0; ok && i < d->n; i++) {
        pack_head(&d->f[i], head);
        ok = fwrite(head, 1, HEAD_BYTES, af.f) == HEAD_BYTES &&
             fwrite(d->f[i].chip, 1, FU_XCHIP_BYTES + 2 * FU_XFFHQ_BYTES, af.f) == FU_XCHIP_BYTES + 2 * FU_XFFHQ_BYTES;
    }
    if (!ok) {
        fu_atomic_abort(&af);
        return fu_fail(FU_E_INPUT, "%s: write failed", path);
    }
    return fu_atomic_commit(&af);
}

int fu_xdata_load(const char *path, fu_xdata *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return fu_fail(FU_E_INPUT, "%s: cannot open", path);
    uint8_t head[HEAD_BYTES], count[8];
    char magic[8];
    int rc = fread(magic, 1, 8, f) == 8 && !memcmp(magic, MAGIC, 8) && fread(count, 1, 8, f) == 8
                 ? FU_OK : fu_fail(FU_E_INPUT, "%s: not a fine-tune data file (magic " MAGIC " expected)", path);
    uint64_t n = rc == FU_OK ? get_u64(count) : 0;
    if (rc == FU_OK && (fseek(f, 0, SEEK_END) != 0 || (uint64_t)ftell(f) != 16 + n * FU_XREC_BYTES || n > (1u << 24)))
        rc = fu_fail(FU_E_INPUT, "%s: length does not match its %llu records (truncated or damaged)", path, (unsigned long long)n);
    if (rc == FU_OK) rc = alloc_pixels(out, (int64_t)n);
    if (rc == FU_OK) fseek(f, 16, SEEK_SET);
    for (uint64_t i = 0; rc == FU_OK && i < n; i++) {
        if (fread(head, 1, HEAD_BYTES, f) != HEAD_BYTES || fread(out->f[i].chip, 1, FU_XREC_BYTES - HEAD_BYTES, f) != FU_XREC_BYTES - HEAD_BYTES)
            rc = fu_fail(FU_E_INPUT, "%s: read failed at record %llu", path, (unsigned long long)i);
        else rc = unpack_head(head, &out->f[i], path, (int64_t)i);
        out->n = (int64_t)i + 1;
    }
    fclose(f);
    if (rc != FU_OK) fu_xdata_free(out);
    return rc;
}

void fu_xdata_free(fu_xdata *d) {
    free(d->f);
    free(d->pixels);
    memset(d, 0, sizeof *d);
}

/* The augmented extractor's fine-tune (see finetune.h). */
#include "finetune.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/error.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"
#include "face/align.h"
#include "face/face_pipeline.h"
#include "face/models.h"
#include "io/image.h"
#include "faceup.h"
#include "search/face_guides.h"
#include "train/face_data.h"
#include "train/never_lfw.h"

#define COS_LIMIT 1e-6f
#define VIEW_GAIN 0.1f
#define SCORE_BATCH 16
#define SCORE_SEED 7

fu_finetune_config fu_finetune_defaults(void) {
    return (fu_finetune_config){
        .steps = 600, .batch = 8, .pairs = 4, .id_batch = 8, .lr = 1e-6f, .head_lr = 1e-4f,
        .w_retain = 10, .w_race = 1, .w_attr = 1, .w_pair = 1, .w_arcface = 1,
        .arcface_s = 30, .arcface_m = 0.3f, .seed = 1, .checkpoint_every = 100,
    };
}

fu_face_extractor *fu_finetune_initial(const char *heads_path) {
    char buf[1024];
    fu_heads *heads = fu_heads_load(heads_path);
    fu_dlib_resnet *net = heads ? fu_dlib_resnet_load(fu_model_path(FU_DLIB_RESNET_MANIFEST, buf, sizeof buf)) : NULL;
    if (!net) {
        fu_heads_free(heads);
        return NULL;
    }
    float t = (float)(2 * asin(FU_IDENTITY_DLIB_THRESHOLD / (2 * FU_IDENTITY_NORM)));
    return fu_face_extractor_new(net, heads, t, (float)FU_IDENTITY_SLOPE);
}

/* ------------------------------------------------------------------ graph pieces */

/* Comparer logits k (t - angle(a_i, b_i)), [N]: a, b [N, D], comparer [2] = (t, k). */
fu_tensor *fu_comparer_logits(fu_graph *g, fu_tensor *a, fu_tensor *b, fu_tensor *comparer) {
    fu_tensor *angle = fu_acos(g, fu_clamp(g, fu_cosine_similarity(g, a, b, 1e-8f), -1 + COS_LIMIT, 1 - COS_LIMIT));
    fu_tensor *t = fu_slice(g, comparer, 0, 0, 1, 1), *k = fu_slice(g, comparer, 0, 1, 2, 1);
    return fu_mul(g, k, fu_sub(g, t, angle));
}

/* The guides' chip transform for 64x64 FFHQ-framed images. */
static int ffhq_chip_theta(const fu_heads *heads, double theta[6]) {
    fu_face_guides fg;
    int rc = fu_face_guides_init(&fg, NULL, heads, FU_XFFHQ);
    if (rc == FU_OK) memcpy(theta, fg.theta, sizeof fg.theta);
    return rc;
}

/* images [N,3,64,64] -> chips [N,3,150,150] through the fixed warp. */
static fu_tensor *ffhq_chips(fu_graph *g, fu_tensor *images, const double theta[6]) {
    int64_t n = images->shape[0];
    fu_tensor *th = fu_graph_tensor(g, 3, (int64_t[]){n, 2, 3});
    for (int64_t i = 0; th && i < n; i++)
        for (int k = 0; k < 6; k++) th->data[i * 6 + k] = (float)theta[k];
    return th ? fu_affine_warp(g, images, th, FU_XCHIP, FU_XCHIP) : NULL;
}

/* The second view of a real 64x64 crop: mirrored, each channel scaled by a gain. */
static void other_view(const uint8_t *src, const float gain[3], float *dst) {
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < FU_XFFHQ; y++)
            for (int x = 0; x < FU_XFFHQ; x++)
                dst[(c * FU_XFFHQ + y) * FU_XFFHQ + x] = gain[c] * (float)src[(c * FU_XFFHQ + y) * FU_XFFHQ + FU_XFFHQ - 1 - x] / 255.0f;
}

/* ------------------------------------------------------------------ the run */

enum { OPT_BACKBONE, OPT_HEADS, OPT_COMPARER, N_OPTS };

typedef struct run {
    fu_finetune_config cfg;
    const fu_xdata *d;
    fu_face_extractor *x;
    fu_tensor *id_weight;          /* [n_ids, 128], ArcFace's class matrix, or NULL */
    fu_optim *opt[N_OPTS];
    fu_rng rng;
    int64_t step;
    double theta[6];
    /* sample pools (indices into d) */
    int64_t *race_pool[FU_RACE_CLASSES], n_race[FU_RACE_CLASSES];
    int64_t *celeba, n_celeba, *looks, n_looks;
    /* identity data: u8 chips and labels */
    int n_ids, n_id_faces;
    uint8_t *id_chips;
    int *id_labels;
    char *ckpt_path;
} run;

static int64_t *pool_of(const fu_xdata *d, int (*want)(const fu_xface *, int), int arg, int64_t *n) {
    int64_t *p = malloc((size_t)(d->n ? d->n : 1) * sizeof *p);
    *n = 0;
    for (int64_t i = 0; p && i < d->n; i++)
        if (d->f[i].split == FU_XSPLIT_TRAIN && want(&d->f[i], arg)) p[(*n)++] = i;
    return p;
}

static int is_race(const fu_xface *f, int race) { return f->source == FU_FACES_UTKFACE && f->race == race; }
static int is_celeba(const fu_xface *f, int unused) { return (void)unused, f->source == FU_FACES_CELEBA && f->attrs_known; }
static int has_look(const fu_xface *f, int unused) { return (void)unused, f->has_lookalike; }

static int make_pools(run *r) {
    int rc = FU_OK;
    for (int c = 0; c < FU_RACE_CLASSES && rc == FU_OK; c++) {
        r->race_pool[c] = pool_of(r->d, is_race, c, &r->n_race[c]);
        if (!r->race_pool[c]) rc = fu_fail(FU_E_INTERNAL, "out of memory");
        else if (r->cfg.w_race > 0 && !r->n_race[c]) rc = fu_fail(FU_E_INPUT, "fine-tune: no UTKFace train face of race %s", fu_race_name(c));
    }
    if (rc == FU_OK) r->celeba = pool_of(r->d, is_celeba, 0, &r->n_celeba);
    if (rc == FU_OK) r->looks = pool_of(r->d, has_look, 0, &r->n_looks);
    if (rc == FU_OK && (!r->celeba || !r->looks)) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK && (r->cfg.w_attr > 0 || r->cfg.w_retain > 0) && !r->n_celeba) rc = fu_fail(FU_E_INPUT, "fine-tune: no CelebA train face");
    if (rc == FU_OK && r->cfg.w_pair > 0 && r->cfg.pairs > 0 && !r->n_looks)
        rc = fu_fail(FU_E_INPUT, "fine-tune: the pair loss needs train faces with a look-alike (none in the data file)");
    return rc;
}

/* Chips of the identity folder: every image through the face pipeline (no cache: the folder is
 * the user's). Images without a face are skipped. */
static int load_ids(run *r) {
    fu_face_data *fd = fu_face_data_open(r->cfg.ids);
    if (!fd) return fu_last_code();
    int rc = fd->paths ? fu_never_lfw_check(r->cfg.ids, fd->paths, fd->n, r->cfg.lfw)
                       : fu_fail(FU_E_INPUT, "%s: --ids needs a folder per identity", r->cfg.ids);
    if (rc != FU_OK) {
        fu_face_data_free(fd);
        return rc;
    }
    fu_face_pipeline p;
    rc = fu_face_pipeline_open(&p);
    r->id_chips = malloc((size_t)(fd->n ? fd->n : 1) * FU_XCHIP_BYTES);
    r->id_labels = malloc((size_t)(fd->n ? fd->n : 1) * sizeof *r->id_labels);
    if (rc == FU_OK && (!r->id_chips || !r->id_labels)) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t i = 0; rc == FU_OK && i < fd->n; i++) {
        fu_tensor *img = fu_image_load(fd->paths[i]);
        float lm[136];
        if (!img) { rc = fu_last_code(); break; }
        int found = fu_face_pipeline_landmarks(&p, img, fd->paths[i], lm);
        fu_graph *g = found == FU_OK ? fu_graph_new() : NULL;
        fu_tensor *chip = g ? fu_align_face(g, img, lm, FU_ALIGN_DLIB, FU_XCHIP, NULL) : NULL;
        for (int64_t k = 0; chip && k < FU_XCHIP_BYTES; k++) {
            float v = chip->data[k] * 255.0f + 0.5f;
            r->id_chips[(size_t)r->n_id_faces * FU_XCHIP_BYTES + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        if (chip) r->id_labels[r->n_id_faces++] = fd->labels[i];
        else if (found != FU_OK && found != FU_E_INPUT) rc = found;
        fu_graph_free(g);
        fu_tensor_free(img);
    }
    r->n_ids = fd->n_ids;
    fu_face_data_free(fd);
    fu_face_pipeline_close(&p);
    if (rc == FU_OK && r->n_id_faces < 2) rc = fu_fail(FU_E_INPUT, "%s: fewer than 2 faces found in the identity folders", r->cfg.ids);
    return rc;
}

/* ------------------------------------------------------------------ one step */

typedef struct step_data {
    float *x, *teacher, *attr_t, *pair_img, *id_x;
    int *race_y, *id_y;
} step_data;

static void fill_batch(run *r, step_data *s) {
    int b = r->cfg.batch;
    for (int k = 0; k < 2 * b; k++) {
        int64_t i;
        if (k < b) {
            int c = (int)fu_rng_below(&r->rng, FU_RACE_CLASSES);
            i = r->race_pool[c][fu_rng_below(&r->rng, (uint64_t)r->n_race[c])];
            s->race_y[k] = c;
        } else {
            i = r->celeba[fu_rng_below(&r->rng, (uint64_t)r->n_celeba)];
            for (int a = 0; a < FU_ATTRS; a++) s->attr_t[(k - b) * FU_ATTRS + a] = (float)((r->d->f[i].attrs >> a) & 1);
        }
        fu_xdata_to_float(r->d->f[i].chip, FU_XCHIP_BYTES, s->x + (int64_t)k * FU_XCHIP_BYTES);
        memcpy(s->teacher + k * 128, r->d->f[i].teacher, 128 * sizeof(float));
    }
}

/* Pair images: p real crops, p other views, p look-alikes. */
static void fill_pairs(run *r, step_data *s) {
    int p = r->cfg.pairs;
    for (int k = 0; k < p; k++) {
        const fu_xface *f = &r->d->f[r->looks[fu_rng_below(&r->rng, (uint64_t)r->n_looks)]];
        float gain[3];
        for (int c = 0; c < 3; c++) gain[c] = 1 + VIEW_GAIN * (2 * fu_rng_uniform(&r->rng) - 1);
        fu_xdata_to_float(f->ffhq, FU_XFFHQ_BYTES, s->pair_img + (int64_t)k * FU_XFFHQ_BYTES);
        other_view(f->ffhq, gain, s->pair_img + (int64_t)(p + k) * FU_XFFHQ_BYTES);
        fu_xdata_to_float(f->lookalike, FU_XFFHQ_BYTES, s->pair_img + (int64_t)(2 * p + k) * FU_XFFHQ_BYTES);
    }
}

static void fill_ids(run *r, step_data *s) {
    for (int k = 0; k < r->cfg.id_batch; k++) {
        int64_t i = (int64_t)fu_rng_below(&r->rng, (uint64_t)r->n_id_faces);
        fu_xdata_to_float(r->id_chips + i * FU_XCHIP_BYTES, FU_XCHIP_BYTES, s->id_x + (int64_t)k * FU_XCHIP_BYTES);
        s->id_y[k] = r->id_labels[i];
    }
}

static fu_tensor *tensor_of(fu_graph *g, const float *src, int ndim, const int64_t *shape) {
    fu_tensor *t = fu_graph_tensor(g, ndim, shape);
    if (t) memcpy(t->data, src, (size_t)t->numel * sizeof(float));
    return t;
}

/* Retention, race and attributes on the main batch; adds the weighted terms to *total. */
static int batch_terms(run *r, fu_graph *g, const step_data *s, fu_tensor **total, fu_finetune_losses *l) {
    int64_t b = r->cfg.batch;
    fu_tensor *x = tensor_of(g, s->x, 4, (int64_t[]){2 * b, 3, FU_XCHIP, FU_XCHIP});
    fu_tensor *e = x ? fu_dlib_resnet_forward(r->x->net, g, x) : NULL;
    fu_tensor *e0 = e ? tensor_of(g, s->teacher, 2, (int64_t[]){2 * b, 128}) : NULL;
    fu_tensor *retain = e0 ? fu_scale_shift(g, fu_mse_loss(g, e, e0), 128.0f, 0) : NULL;   /* mean |e - e0|^2 per face */
    fu_tensor *race = retain ? fu_cross_entropy(g, fu_heads_race_logits(g, r->x->heads, fu_slice(g, e, 0, 0, b, 1)), s->race_y) : NULL;
    fu_tensor *at = race ? tensor_of(g, s->attr_t, 2, (int64_t[]){b, FU_ATTRS}) : NULL;
    fu_tensor *attr = at ? fu_bce_with_logits(g, fu_mlp_forward(g, &r->x->heads->attr, fu_slice(g, e, 0, b, 2 * b, 1)), at, NULL) : NULL;
    if (!attr) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    l->retain = retain->data[0], l->race = race->data[0], l->attr = attr->data[0];
    *total = fu_add(g, fu_add(g, fu_scale_shift(g, retain, r->cfg.w_retain, 0), fu_scale_shift(g, race, r->cfg.w_race, 0)),
                    fu_scale_shift(g, attr, r->cfg.w_attr, 0));
    return *total ? FU_OK : fu_last_code();
}

static int pair_term(run *r, fu_graph *g, const step_data *s, fu_tensor **total, fu_finetune_losses *l) {
    int64_t p = r->cfg.pairs;
    fu_tensor *img = tensor_of(g, s->pair_img, 4, (int64_t[]){3 * p, 3, FU_XFFHQ, FU_XFFHQ});
    fu_tensor *e = img ? fu_dlib_resnet_forward(r->x->net, g, ffhq_chips(g, img, r->theta)) : NULL;
    if (!e) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    fu_tensor *a = fu_slice(g, e, 0, 0, p, 1), *v = fu_slice(g, e, 0, p, 2 * p, 1), *lk = fu_slice(g, e, 0, 2 * p, 3 * p, 1);
    fu_tensor *parts[2] = {fu_comparer_logits(g, a, v, r->x->comparer), fu_comparer_logits(g, a, lk, r->x->comparer)};
    fu_tensor *logits = parts[0] && parts[1] ? fu_concat(g, parts, 2, 0) : NULL;
    fu_tensor *target = logits ? fu_graph_tensor(g, 1, logits->shape) : NULL;
    for (int64_t k = 0; target && k < 2 * p; k++) target->data[k] = k < p ? 1.0f : 0.0f;
    fu_tensor *loss = target ? fu_bce_with_logits(g, logits, target, NULL) : NULL;
    if (!loss) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    l->pair = loss->data[0];
    *total = fu_add(g, *total, fu_scale_shift(g, loss, r->cfg.w_pair, 0));
    return *total ? FU_OK : fu_last_code();
}

static int arcface_term(run *r, fu_graph *g, const step_data *s, fu_tensor **total, fu_finetune_losses *l) {
    int64_t n = r->cfg.id_batch;
    fu_tensor *x = tensor_of(g, s->id_x, 4, (int64_t[]){n, 3, FU_XCHIP, FU_XCHIP});
    fu_tensor *e = x ? fu_dlib_resnet_forward(r->x->net, g, x) : NULL;
    fu_tensor *logits = e ? fu_arcface_logits(g, e, r->id_weight, s->id_y, r->cfg.arcface_s, r->cfg.arcface_m) : NULL;
    fu_tensor *loss = logits ? fu_cross_entropy(g, logits, s->id_y) : NULL;
    if (!loss) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    l->arcface = loss->data[0];
    *total = fu_add(g, *total, fu_scale_shift(g, loss, r->cfg.w_arcface, 0));
    return *total ? FU_OK : fu_last_code();
}

static int uses_pairs(const run *r) { return r->cfg.w_pair > 0 && r->cfg.pairs > 0; }
static int uses_ids(const run *r) { return r->id_weight && r->cfg.w_arcface > 0 && r->cfg.id_batch > 0; }

static int train_step(run *r, fu_graph *g, step_data *s, fu_finetune_losses *l) {
    memset(l, 0, sizeof *l);
    fill_batch(r, s);
    if (uses_pairs(r)) fill_pairs(r, s);
    if (uses_ids(r)) fill_ids(r, s);
    fu_graph_reset(g);
    fu_tensor *total = NULL;
    int rc = batch_terms(r, g, s, &total, l);
    if (rc == FU_OK && uses_pairs(r)) rc = pair_term(r, g, s, &total, l);
    if (rc == FU_OK && uses_ids(r)) rc = arcface_term(r, g, s, &total, l);
    if (rc == FU_OK && !isfinite(total->data[0])) rc = fu_fail(FU_E_INTERNAL, "fine-tune: loss is not finite at step %" PRId64, r->step);
    for (int k = 0; k < N_OPTS; k++) fu_optim_zero_grad(r->opt[k]);
    if (rc == FU_OK) rc = fu_graph_backward(g, total, NULL);
    float lrs[N_OPTS] = {r->cfg.lr, r->cfg.head_lr, FU_FINETUNE_COMPARER_LR};
    for (int k = 0; k < N_OPTS && rc == FU_OK; k++) rc = fu_optim_step(r->opt[k], lrs[k]);
    l->steps = 1;
    return rc;
}

/* ------------------------------------------------------------------ setup and checkpoints */

static int make_optimizers(run *r) {
    fu_dlib_resnet *net = r->x->net;
    int n_net = fu_dlib_resnet_n_params(net);
    fu_tensor *p[128];   /* the backbone's 117 weights, then the heads' 8 and the ArcFace matrix */
    int rc = fu_dlib_resnet_requires_grad(net, 1);
    for (int i = 0; i < n_net; i++) p[i] = fu_dlib_resnet_param(net, i);
    fu_optim_config oc = fu_optim_adam_defaults();
    if (rc == FU_OK && !(r->opt[OPT_BACKBONE] = fu_optim_new(&oc, p, n_net))) rc = fu_last_code();
    fu_mlp_params(&r->x->heads->race, p);
    fu_mlp_params(&r->x->heads->attr, p + 4);
    int n = 8;
    if (r->id_weight) p[n++] = r->id_weight;
    for (int i = 0; i < n && rc == FU_OK; i++) rc = fu_tensor_requires_grad(p[i], 1);
    if (rc == FU_OK && !(r->opt[OPT_HEADS] = fu_optim_new(&oc, p, n))) rc = fu_last_code();
    if (rc == FU_OK) rc = fu_tensor_requires_grad(r->x->comparer, 1);
    if (rc == FU_OK && !(r->opt[OPT_COMPARER] = fu_optim_new(&oc, &r->x->comparer, 1))) rc = fu_last_code();
    return rc;
}

/* The settings a checkpoint fixes: a resumed run must be given the same ones (steps may grow). */
static void settings_text(const fu_finetune_config *c, int n_ids, char *buf, size_t n) {
    snprintf(buf, n, "batch=%d pairs=%d id_batch=%d lr=%a head_lr=%a w=%a,%a,%a,%a,%a arcface=%a,%a seed=%" PRIu64 " ids=%d", c->batch,
             c->pairs, c->id_batch, (double)c->lr, (double)c->head_lr, (double)c->w_retain, (double)c->w_race, (double)c->w_attr,
             (double)c->w_pair, (double)c->w_arcface, (double)c->arcface_s, (double)c->arcface_m, c->seed, n_ids);
}

static const char *const state_names[N_OPTS] = {"train.adam.backbone", "train.adam.heads", "train.adam.comparer"};

static int save_checkpoint(run *r) {
    fu_st_item extra[N_OPTS + 1];
    fu_tensor *state[N_OPTS] = {0};
    int rc = FU_OK, n = 0;
    for (int k = 0; k < N_OPTS && rc == FU_OK; k++) {
        if (!(state[k] = fu_tensor_newv(1, fu_optim_state_numel(r->opt[k])))) rc = FU_E_INTERNAL;
        else fu_optim_state_get(r->opt[k], state[k]->data), extra[n++] = (fu_st_item){state_names[k], state[k], FU_F32};
    }
    if (r->id_weight) extra[n++] = (fu_st_item){"train.arcface_weight", r->id_weight, FU_F32};
    char step[32], adam[3][32], rng[160], settings[512];
    snprintf(step, sizeof step, "%" PRId64, r->step);
    for (int k = 0; k < N_OPTS; k++) snprintf(adam[k], sizeof adam[k], "%" PRId64, r->opt[k]->step);
    fu_rng_to_text(&r->rng, rng, sizeof rng);
    settings_text(&r->cfg, r->n_ids, settings, sizeof settings);
    const char *meta[] = {"train.step", step, "train.rng", rng, "train.settings", settings, "train.adam_steps.backbone", adam[0],
                          "train.adam_steps.heads", adam[1], "train.adam_steps.comparer", adam[2]};
    if (rc == FU_OK) rc = fu_face_extractor_save(r->x, r->ckpt_path, FU_F32, extra, n, meta, 6);
    for (int k = 0; k < N_OPTS; k++) fu_tensor_free(state[k]);
    return rc;
}

static int meta_i64(const fu_safetensors *st, const char *key, int64_t *out) {
    const char *s = fu_st_meta_get(st, key);
    char *end;
    long long v = s ? strtoll(s, &end, 10) : -1;
    if (!s || *end || v < 0) return fu_fail(FU_E_INPUT, "%s: checkpoint metadata %s missing or invalid", st->label, key);
    *out = v;
    return FU_OK;
}

static int read_into(const fu_safetensors *st, const char *name, float *dst, int64_t numel) {
    const fu_st_entry *e = fu_st_find(st, name);
    if (!e || e->numel != numel) return fu_fail(FU_E_INPUT, "%s: checkpoint tensor %s missing or of the wrong size", st->label, name);
    fu_convert_to_f32(e->dtype, st->data + e->begin, dst, (size_t)numel);
    return FU_OK;
}

/* Optimisers, RNG, step and the ArcFace matrix from the checkpoint (the extractor is loaded). */
static int restore(run *r, const fu_safetensors *st) {
    char want[512];
    settings_text(&r->cfg, r->n_ids, want, sizeof want);
    const char *have = fu_st_meta_get(st, "train.settings");
    if (!have || strcmp(have, want))
        return fu_fail(FU_E_INPUT, "%s: the checkpoint was made with other settings (%s); resume with the same flags", st->label, have ? have : "none");
    int rc = meta_i64(st, "train.step", &r->step);
    static const char *const adam_keys[N_OPTS] = {"train.adam_steps.backbone", "train.adam_steps.heads", "train.adam_steps.comparer"};
    for (int k = 0; k < N_OPTS && rc == FU_OK; k++) {
        int64_t n = fu_optim_state_numel(r->opt[k]);
        float *buf = malloc((size_t)n * sizeof *buf);
        rc = buf ? read_into(st, state_names[k], buf, n) : FU_E_INTERNAL;
        if (rc == FU_OK) rc = fu_optim_state_set(r->opt[k], buf, n);
        if (rc == FU_OK) rc = meta_i64(st, adam_keys[k], &r->opt[k]->step);
        free(buf);
    }
    if (rc == FU_OK && r->id_weight) rc = read_into(st, "train.arcface_weight", r->id_weight->data, r->id_weight->numel);
    if (rc == FU_OK && !fu_rng_from_text(fu_st_meta_get(st, "train.rng"), &r->rng))
        rc = fu_fail(FU_E_INPUT, "%s: checkpoint metadata train.rng missing or invalid", st->label);
    return rc;
}

static int new_id_weight(run *r) {
    if (!r->cfg.ids) return FU_OK;
    int rc = load_ids(r);
    if (rc != FU_OK) return rc;
    if (!(r->id_weight = fu_tensor_newv(2, (int64_t)r->n_ids, (int64_t)128))) return FU_E_INTERNAL;
    fu_rng init;
    fu_rng_seed(&init, r->cfg.seed ^ 0xa5cfULL);
    fu_rng_fill_normal(&init, r->id_weight->data, r->id_weight->numel, 0, 0.01f);
    return FU_OK;
}

static int run_open(run *r) {
    size_t len = strlen(r->cfg.out) + 32;
    if (!(r->ckpt_path = malloc(len))) return fu_fail(FU_E_INTERNAL, "out of memory");
    snprintf(r->ckpt_path, len, "%s.ckpt.safetensors", r->cfg.out);
    int rc = new_id_weight(r);
    if (rc != FU_OK) return rc;
    fu_safetensors *st = NULL;
    if (r->cfg.resume) {
        if (!(st = fu_st_open(r->ckpt_path))) return fu_last_code();
        r->x = fu_face_extractor_load(r->ckpt_path);
    } else {
        r->x = fu_finetune_initial(r->cfg.heads);
        fu_rng_seed(&r->rng, r->cfg.seed);
    }
    rc = r->x ? make_optimizers(r) : fu_last_code();
    if (rc == FU_OK) rc = ffhq_chip_theta(r->x->heads, r->theta);
    if (rc == FU_OK && st) rc = restore(r, st);
    fu_st_free(st);
    if (rc == FU_OK && r->step > r->cfg.steps)
        rc = fu_fail(FU_E_INPUT, "fine-tune: the checkpoint is at step %" PRId64 ", beyond --steps %" PRId64, r->step, r->cfg.steps);
    return rc == FU_OK ? make_pools(r) : rc;
}

static void run_close(run *r) {
    for (int k = 0; k < N_OPTS; k++) fu_optim_free(r->opt[k]);
    for (int c = 0; c < FU_RACE_CLASSES; c++) free(r->race_pool[c]);
    free(r->celeba);
    free(r->looks);
    free(r->id_chips);
    free(r->id_labels);
    free(r->ckpt_path);
    fu_tensor_free(r->id_weight);
    fu_face_extractor_free(r->x);
}

static int step_data_alloc(const fu_finetune_config *c, step_data *s) {
    memset(s, 0, sizeof *s);
    s->x = malloc((size_t)2 * c->batch * FU_XCHIP_BYTES * sizeof(float));
    s->teacher = malloc((size_t)2 * c->batch * 128 * sizeof(float));
    s->attr_t = malloc((size_t)c->batch * FU_ATTRS * sizeof(float));
    s->race_y = malloc((size_t)c->batch * sizeof(int));
    s->pair_img = malloc((size_t)(3 * c->pairs + 1) * FU_XFFHQ_BYTES * sizeof(float));
    s->id_x = malloc((size_t)(c->id_batch + 1) * FU_XCHIP_BYTES * sizeof(float));
    s->id_y = malloc((size_t)(c->id_batch + 1) * sizeof(int));
    return s->x && s->teacher && s->attr_t && s->race_y && s->pair_img && s->id_x && s->id_y ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
}

static void step_data_free(step_data *s) {
    free(s->x); free(s->teacher); free(s->attr_t); free(s->race_y); free(s->pair_img); free(s->id_x); free(s->id_y);
}

static void accumulate(fu_finetune_losses *sum, const fu_finetune_losses *l) {
    sum->retain += l->retain, sum->race += l->race, sum->attr += l->attr, sum->pair += l->pair, sum->arcface += l->arcface;
    sum->steps++;
}

static void average(fu_finetune_losses *s) {
    if (!s->steps) return;
    s->retain /= s->steps, s->race /= s->steps, s->attr /= s->steps, s->pair /= s->steps, s->arcface /= s->steps;
}

static int check_config(const fu_finetune_config *c) {
    if (c->steps < 0 || c->batch < 1 || c->pairs < 0 || c->id_batch < 0 || !(c->lr >= 0) || !(c->head_lr >= 0) || c->checkpoint_every < 1)
        return fu_fail(FU_E_INPUT, "fine-tune: steps, pairs, id batch >= 0, batch and checkpoint interval >= 1, learning rates >= 0");
    float w[] = {c->w_retain, c->w_race, c->w_attr, c->w_pair, c->w_arcface};
    for (int k = 0; k < 5; k++)
        if (!(w[k] >= 0) || !isfinite(w[k])) return fu_fail(FU_E_INPUT, "fine-tune: loss weights must be finite and >= 0");
    if (!c->out || !c->heads) return fu_fail(FU_E_INPUT, "fine-tune: an output and a heads file are needed");
    return FU_OK;
}

int fu_finetune_run(const fu_xdata *d, const fu_finetune_config *cfg, fu_finetune_report *rep,
                    void (*progress)(void *ctx, int64_t step, int64_t steps, const fu_finetune_losses *l), void *ctx) {
    memset(rep, 0, sizeof *rep);
    int rc = check_config(cfg);
    if (rc != FU_OK) return rc;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run r = {.cfg = *cfg, .d = d};
    step_data s;
    fu_graph *g = fu_graph_new();
    rc = g ? run_open(&r) : FU_E_INTERNAL;
    if (rc == FU_OK) rc = step_data_alloc(cfg, &s);
    else memset(&s, 0, sizeof s);
    rep->first_step = r.step;
    int64_t n_run = cfg->steps - r.step;
    int64_t window = n_run / 4 < FU_FINETUNE_WINDOW ? (n_run / 4 > 0 ? n_run / 4 : 1) : FU_FINETUNE_WINDOW;
    while (rc == FU_OK && r.step < cfg->steps) {
        fu_finetune_losses l;
        rc = train_step(&r, g, &s, &l);
        if (rc != FU_OK) break;
        r.step++;
        int64_t k = r.step - rep->first_step;
        if (k <= window) accumulate(&rep->first, &l);
        if (k > n_run - window) accumulate(&rep->last, &l);
        if (progress) progress(ctx, r.step, cfg->steps, &l);
        if (r.step % cfg->checkpoint_every == 0 || r.step == cfg->steps) rc = save_checkpoint(&r);
    }
    average(&rep->first);
    average(&rep->last);
    rep->steps_run = r.step - rep->first_step;
    rep->n_ids = r.n_ids;
    rep->n_id_faces = r.n_id_faces;
    if (rc == FU_OK) {
        char steps[32];
        snprintf(steps, sizeof steps, "%" PRId64, r.step);
        const char *meta[] = {"faceup.kind", "augmented-extractor", "train.step", steps, "license",
                              "trained on UTKFace and CelebA: non-commercial research use only, as those data sets"};
        rc = fu_face_extractor_save(r.x, cfg->out, FU_F16, NULL, 0, meta, 3);
    }
    step_data_free(&s);
    run_close(&r);
    fu_graph_free(g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    rep->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return rc;
}

/* ------------------------------------------------------------------ scores */

int fu_extractor_describe(fu_face_extractor *x, const fu_xdata *d, const int64_t *idx, int64_t n, float *out,
                          fu_progress_fn progress, void *ctx) {
    int rc = FU_OK;
    float *buf = malloc((size_t)SCORE_BATCH * FU_XCHIP_BYTES * sizeof(float));
    if (!buf) return fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t i = 0; i < n && rc == FU_OK; i += SCORE_BATCH) {
        int64_t b = n - i < SCORE_BATCH ? n - i : SCORE_BATCH;
        for (int64_t k = 0; k < b; k++) fu_xdata_to_float(d->f[idx[i + k]].chip, FU_XCHIP_BYTES, buf + k * FU_XCHIP_BYTES);
        fu_graph *g = fu_graph_new();
        fu_tensor *in = g ? tensor_of(g, buf, 4, (int64_t[]){b, 3, FU_XCHIP, FU_XCHIP}) : NULL;
        fu_tensor *e = in ? fu_dlib_resnet_forward(x->net, g, in) : NULL;
        if (e) memcpy(out + i * 128, e->data, (size_t)b * 128 * sizeof(float));
        else rc = fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
        fu_graph_free(g);
        if (progress) progress(ctx, i + b, n, "faces");
    }
    free(buf);
    return rc;
}

static void score_race(const fu_xdata *d, const int64_t *idx, int64_t n, const float *logits, fu_extractor_scores *s) {
    int right = 0, total = 0;
    for (int64_t i = 0; i < n; i++) {
        const fu_xface *f = &d->f[idx[i]];
        if (f->source != FU_FACES_UTKFACE || f->race < 0) continue;
        const float *l = logits + i * FU_RACE_CLASSES;
        int best = 0;
        for (int c = 1; c < FU_RACE_CLASSES; c++) if (l[c] > l[best]) best = c;
        s->race_count[f->race]++, total++;
        if (best == f->race) s->race_correct[best]++, right++;
    }
    double bal = 0;
    for (int c = 0; c < FU_RACE_CLASSES; c++) bal += s->race_count[c] ? (double)s->race_correct[c] / s->race_count[c] : 0;
    s->race_accuracy = total ? (double)right / total : 0;
    s->race_balanced = bal / FU_RACE_CLASSES;
}

static void score_attrs(const fu_xdata *d, const int64_t *idx, int64_t n, const float *logits, fu_extractor_scores *s) {
    int64_t right[FU_ATTRS] = {0};
    s->attr_n = 0;
    for (int64_t i = 0; i < n; i++) {
        const fu_xface *f = &d->f[idx[i]];
        if (f->source != FU_FACES_CELEBA || !f->attrs_known) continue;
        for (int a = 0; a < FU_ATTRS; a++) right[a] += (logits[i * FU_ATTRS + a] > 0) == (int)((f->attrs >> a) & 1);
        s->attr_n++;
    }
    s->attr_mean = 0;
    for (int a = 0; a < FU_ATTRS; a++) {
        s->attr_accuracy[a] = s->attr_n ? (double)right[a] / s->attr_n : 0;
        s->attr_mean += s->attr_accuracy[a] / FU_ATTRS;
    }
}

/* Comparer decisions on the split's look-alike faces: (real, view) same, (real, look-alike)
 * different. */
static int score_pairs(fu_face_extractor *x, const fu_xdata *d, int split, fu_extractor_scores *s) {
    double theta[6];
    int rc = ffhq_chip_theta(x->heads, theta);
    fu_rng rng;
    fu_rng_seed(&rng, SCORE_SEED);
    float *img = malloc(3 * FU_XFFHQ_BYTES * sizeof(float));
    if (!img) return fu_fail(FU_E_INTERNAL, "out of memory");
    float t = x->comparer->data[0], k = x->comparer->data[1];
    for (int64_t i = 0; i < d->n && rc == FU_OK; i++) {
        const fu_xface *f = &d->f[i];
        if (f->split != split || !f->has_lookalike) continue;
        float gain[3];
        for (int c = 0; c < 3; c++) gain[c] = 1 + VIEW_GAIN * (2 * fu_rng_uniform(&rng) - 1);
        fu_xdata_to_float(f->ffhq, FU_XFFHQ_BYTES, img);
        other_view(f->ffhq, gain, img + FU_XFFHQ_BYTES);
        fu_xdata_to_float(f->lookalike, FU_XFFHQ_BYTES, img + 2 * FU_XFFHQ_BYTES);
        fu_graph *g = fu_graph_new();
        fu_tensor *in = g ? tensor_of(g, img, 4, (int64_t[]){3, 3, FU_XFFHQ, FU_XFFHQ}) : NULL;
        fu_tensor *e = in ? fu_dlib_resnet_forward(x->net, g, ffhq_chips(g, in, theta)) : NULL;
        fu_tensor *real = e ? fu_slice(g, e, 0, 0, 1, 1) : NULL;   /* rows: real, view, look-alike */
        fu_tensor *reals = real ? fu_concat(g, (fu_tensor *[]){real, real}, 2, 0) : NULL;
        fu_tensor *cos = reals ? fu_cosine_similarity(g, reals, fu_slice(g, e, 0, 1, 3, 1), 1e-8f) : NULL;
        if (!cos) rc = fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
        else {
            double same = acos(fmax(-1, fmin(1, cos->data[0]))), diff = acos(fmax(-1, fmin(1, cos->data[1])));
            s->pairs++;
            s->angle_same += same, s->angle_diff += diff;
            s->same_right += k * (t - same) > 0;
            s->diff_right += k * (t - diff) <= 0;
        }
        fu_graph_free(g);
    }
    free(img);
    if (s->pairs) s->angle_same /= s->pairs, s->angle_diff /= s->pairs;
    s->separation = s->pairs ? (double)(s->same_right + s->diff_right) / (2.0 * s->pairs) : 0;
    return rc;
}

int fu_extractor_score(fu_face_extractor *x, const fu_xdata *d, int split, fu_extractor_scores *s, fu_progress_fn progress,
                       void *ctx) {
    memset(s, 0, sizeof *s);
    int64_t n = 0, *idx = malloc((size_t)(d->n ? d->n : 1) * sizeof *idx);
    float *e = malloc((size_t)(d->n ? d->n : 1) * 128 * sizeof *e);
    float *logits = malloc((size_t)(d->n ? d->n : 1) * FU_ATTRS * sizeof *logits);
    int rc = idx && e && logits ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t i = 0; rc == FU_OK && i < d->n; i++)
        if (d->f[i].split == split) idx[n++] = i;
    if (rc == FU_OK && n == 0) rc = fu_fail(FU_E_INPUT, "the data file has no %s faces", split == FU_XSPLIT_TEST ? "test" : "val");
    if (rc == FU_OK) rc = fu_extractor_describe(x, d, idx, n, e, progress, ctx);
    if (rc == FU_OK) rc = fu_heads_race_rows(x->heads, e, n, logits);
    if (rc == FU_OK) score_race(d, idx, n, logits, s);
    if (rc == FU_OK) rc = fu_mlp_rows(&x->heads->attr, e, n, logits);
    if (rc == FU_OK) score_attrs(d, idx, n, logits, s);
    for (int64_t i = 0; rc == FU_OK && i < n; i++) {
        double d2 = 0;
        for (int k = 0; k < 128; k++) d2 += (double)(e[i * 128 + k] - d->f[idx[i]].teacher[k]) * (e[i * 128 + k] - d->f[idx[i]].teacher[k]);
        s->drift_mean += sqrt(d2) / (double)n;
    }
    s->n_faces = (int)n;
    if (rc == FU_OK) rc = score_pairs(x, d, split, s);
    free(idx);
    free(e);
    free(logits);
    return rc;
}

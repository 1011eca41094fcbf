/* faceup upscale: PULSE-style latent search for high-resolution faces that downscale to the
 * given thumbnails (src/search/search.h). Everything is checked before the first search (files,
 * sizes, loss strings, networks the loss needs), so bad input exits 2 without writing anything.
 *
 * Outputs, for a thumbnail with stem S: -o follows outpath.h (a file OUT.png or OUT.jpg: base =
 * OUT without its extension, EXT its extension; a folder DIR: base = DIR/S, EXT .png):
 *   base.EXT                       the best accepted image over the seeds
 *   base_no_solution.EXT           instead, when no seed met eps (exit status 1)
 *   base_seed<k>[_no_solution].EXT each seed's image, when --seeds > 1
 *   base_seed<k>_w<wave>_step<j>.EXT  with --save-intermediate: the best image so far, every step
 * A thumbnail whose base.EXT exists is skipped unless --overwrite; one that only has its
 * base_no_solution.EXT is searched again (with other --steps or --seeds, say).
 * A thumbnail that cannot be read or used is reported (one stderr line, a JSON record with
 * "status": "error") and the others go on; the exit status is the worst of the thumbnails'.
 * --sheet PNG: one row per thumbnail: nearest-neighbour upscale | bicubic upscale | seeds |
 * the --identity reference face.
 * Under mpirun (the MPI build, train/dist.h) the ranks share the thumbnails: rank r upscales
 * thumbnails r, r + N, r + 2N, ... of the sorted list; rank 0 prints the JSON of all of them
 * (each result names its "rank"); --sheet needs a single process. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "core/ops.h"
#include "eval/text.h"
#include "face/models.h"
#include "faceup.h"
#include "gen/generator.h"
#include "io/image.h"
#include "json_out.h"
#include "outpath.h"
#include "photo_thumb.h"
#include "progress.h"
#include "search/search.h"
#include "train/dist.h"
#include "upscale_face.h"

#define DEFAULT_GENERATOR "models/faceup-vae64.safetensors"
#define MAX_INPUTS 100000
#define PATH_CAP 4096
#define ALIGN_HINT "faceup align PHOTO -o thumb.png --size 256 --downscale 16"
#define MIN_THUMB 8   /* below 8x8 a thumbnail holds too little of a face: the search invents one */

typedef struct options {
    const char *out, *generator, *gaussfit, *loss, *loss2, *schedule, *noise, *sheet, *identity, *attr, *race;
    int seeds, first_seed, steps, trainable_noise, save_intermediate, json, overwrite, threads, quiet, random_init, no_face_check, from_photo;
    float lr, eps, face_jitter;
    guide_flags guide;
} options;

typedef struct job {
    char *input, *stem;
    char base[PATH_CAP];         /* output path without its extension */
    const char *ext;             /* the outputs' extension: ".png", ".jpg" or ".jpeg" */
    fu_tensor *thumb;
    int status;                  /* FU_OK, or why the thumbnail cannot be upscaled (then error) */
    char error[512];
} job;

typedef struct run_ctx {         /* what the per-step callback needs */
    const options *opt;
    const job *jb;
    progress bar;
    long done_before;
    int waves, write_failed;
} run_ctx;

/* ---------------------------------------------------------------- inputs */

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    char ext[8] = {0};
    for (int i = 0; i < 7 && dot[i + 1]; i++) ext[i] = (char)tolower((unsigned char)dot[i + 1]);
    return !strcmp(ext, "png") || !strcmp(ext, "jpg") || !strcmp(ext, "jpeg");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int add_job(job **jobs, int *n, const char *path) {
    if (*n == MAX_INPUTS) return fu_fail(FU_E_INPUT, "more than %d thumbnails", MAX_INPUTS);
    job *grown = realloc(*jobs, (size_t)(*n + 1) * sizeof **jobs);
    if (!grown) return fu_fail(FU_E_INTERNAL, "out of memory");
    *jobs = grown;
    job *j = &grown[(*n)++];
    memset(j, 0, sizeof *j);
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    j->input = strdup(path);
    j->stem = strdup(name);
    if (!j->input || !j->stem) return fu_fail(FU_E_INTERNAL, "out of memory");
    char *dot = strrchr(j->stem, '.');
    if (dot && dot != j->stem) *dot = 0;
    return FU_OK;
}

/* Image files of a directory, sorted by name. */
static int add_directory(job **jobs, int *n, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return fu_fail(FU_E_INPUT, "%s: cannot read the directory", dir);
    char **names = NULL;
    int count = 0, rc = FU_OK;
    for (struct dirent *e; rc == FU_OK && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !has_image_ext(e->d_name)) continue;
        char **grown = realloc(names, (size_t)(count + 1) * sizeof *names);
        if (!grown || !(grown[count] = malloc(strlen(dir) + strlen(e->d_name) + 2))) {
            names = grown ? grown : names;
            rc = fu_fail(FU_E_INTERNAL, "out of memory");
            break;
        }
        names = grown;
        sprintf(names[count++], "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (rc == FU_OK && count == 0) rc = fu_fail(FU_E_INPUT, "%s: no .png or .jpg images in the directory", dir);
    if (names) qsort(names, (size_t)count, sizeof *names, cmp_str);
    for (int i = 0; i < count; i++) {
        if (rc == FU_OK) rc = add_job(jobs, n, names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Jobs from the positional arguments; *many = output is a directory. */
static int collect_inputs(char **pos, int n_pos, job **jobs, int *n, int *many) {
    *many = n_pos > 1;
    for (int i = 0; i < n_pos; i++) {
        int rc = is_directory(pos[i]) ? (*many = 1, add_directory(jobs, n, pos[i])) : add_job(jobs, n, pos[i]);
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

/* The stem of an output path: without its extension. */
static int set_base(job *j, const char *path, int stem_len) {
    int k = snprintf(j->base, PATH_CAP, "%.*s", stem_len, path);
    return k < 0 || k >= PATH_CAP ? fu_fail(FU_E_INPUT, "%s: output path too long", j->input) : FU_OK;
}

/* Each job's output base and extension, by outpath.h's rule for -o (without -o: STEM_up.png here). */
static int plan_outputs(job *jobs, int n, const out_target *t) {
    for (int i = 0; i < n; i++) {
        char path[PATH_CAP];
        int rc;
        if (!t) rc = snprintf(path, sizeof path, "%s_up.png", jobs[i].stem) < PATH_CAP ? FU_OK : fu_fail(FU_E_INPUT, "%s: output path too long", jobs[i].input);
        else if (t->folder) rc = outpath_in_folder(t->path, jobs[i].input, path, sizeof path);
        else rc = snprintf(path, sizeof path, "%s", t->path) < PATH_CAP ? FU_OK : FU_E_INPUT;
        const char *ext = rc == FU_OK ? outpath_extension("-o", path) : NULL;
        if (!ext) return FU_E_INPUT;
        jobs[i].ext = strrchr(t && !t->folder ? t->path : ".png", '.');
        rc = set_base(&jobs[i], path, (int)(ext - path));
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

/* No output may be another's, an input, or the sheet: checked before any work. */
static int check_collisions(const job *jobs, int n, const char *sheet, const char *identity) {
    char **outs = calloc((size_t)(2 * n + 1), sizeof *outs);
    const char **ins = calloc((size_t)(n + 1), sizeof *ins);
    int n_out = 0, n_in = 0, rc = outs && ins ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int i = 0; rc == FU_OK && i < n; i++) {
        const char *suffixes[2] = {"", "_no_solution"};
        for (int k = 0; rc == FU_OK && k < 2; k++) {
            size_t len = strlen(jobs[i].base) + strlen(suffixes[k]) + strlen(jobs[i].ext) + 1;
            if (!(outs[n_out] = malloc(len))) rc = fu_fail(FU_E_INTERNAL, "out of memory");
            else snprintf(outs[n_out++], len, "%s%s%s", jobs[i].base, suffixes[k], jobs[i].ext);
        }
        ins[n_in++] = jobs[i].input;
    }
    if (identity && ins) ins[n_in++] = identity;
    if (rc == FU_OK && sheet && !(outs[n_out++] = strdup(sheet))) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) rc = outpath_check_distinct((const char *const *)outs, n_out, ins, n_in);
    for (int i = 0; outs && i < n_out; i++) free(outs[i]);
    free(outs);
    free(ins);
    return rc;
}

/* A thumbnail that cannot be used: one stderr line now (from the rank that owns it, under mpirun),
 * an error record in the JSON later. */
static void job_failed(job *j, int rc, int report) {
    const char *why = fu_last_error();
    j->status = exit_status(rc ? rc : FU_E_INPUT);
    if (strstr(why, j->input)) snprintf(j->error, sizeof j->error, "%s", why);
    else snprintf(j->error, sizeof j->error, "%s: %s", j->input, why);
    if (report) fprintf(stderr, "faceup upscale: %s\n", j->error);
}

/* An input larger than any thumbnail the generator takes is a photo, as is any with --from-photo:
 * it is replaced by its face's thumbnail, and the user is told. */
static int photo_input(job *j, const fu_generator *gen, int from_photo, photo_thumbs *photos, int report) {
    int64_t h = j->thumb->shape[2], w = j->thumb->shape[3];
    if (!from_photo && (h <= gen->resolution / 2 || w <= gen->resolution / 2)) return FU_OK;
    int side = photo_thumb_side(gen->resolution);
    fu_tensor *thumb = photo_to_thumbnail(photos, j->thumb, j->input, side);
    if (!thumb) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    fu_tensor_free(j->thumb);
    j->thumb = thumb;
    if (report) fprintf(stderr, "faceup upscale: %s: a %lldx%lld photo: its face, FFHQ-aligned and downscaled to %dx%d, is the thumbnail "
                    "(as 'faceup align PHOTO -o thumb.png --size %d --downscale %d' would make it)\n", j->input, (long long)w,
                    (long long)h, side, side, side * PHOTO_ALIGN_FACTOR, PHOTO_ALIGN_FACTOR);
    return FU_OK;
}

/* Loads and checks every thumbnail before anything is written; a bad one is set aside (job_failed).
 * Returns how many can be upscaled. */
static int load_thumbnails(job *jobs, int n, const fu_generator *gen, const options *o, const fu_dist *dist) {
    int usable = 0;
    photo_thumbs photos = {0};
    for (int i = 0; i < n; i++) {
        int factor, rc, mine = i % dist->size == dist->rank;   /* under mpirun, the rank that reports it */
        if (!(jobs[i].thumb = fu_image_load(jobs[i].input))) rc = fu_last_code() ? fu_last_code() : FU_E_INPUT;
        else rc = photo_input(&jobs[i], gen, o->from_photo, &photos, mine);
        if (rc == FU_OK && (rc = fu_search_check_thumbnail(gen, jobs[i].thumb, jobs[i].input, &factor)) != FU_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", fu_last_error());
            rc = fu_fail(rc, "%s, at least %dx%d, and an FFHQ-aligned face: from a photo, %s makes one", why, MIN_THUMB, MIN_THUMB, ALIGN_HINT);
        }
        if (rc == FU_OK && jobs[i].thumb->shape[2] < MIN_THUMB)
            rc = fu_fail(FU_E_INPUT, "%s: thumbnail is %lldx%lld; below %dx%d it holds too little of a face (the search would invent one)",
                         jobs[i].input, (long long)jobs[i].thumb->shape[3], (long long)jobs[i].thumb->shape[2], MIN_THUMB, MIN_THUMB);
        if (rc == FU_OK && !o->no_face_check) rc = fu_search_check_content(jobs[i].thumb, jobs[i].input);
        if (rc == FU_OK) usable++;
        else job_failed(&jobs[i], rc, mine);
    }
    photo_thumbs_close(&photos);
    return usable;
}

static void free_jobs(job *jobs, int n) {
    for (int i = 0; i < n; i++) {
        free(jobs[i].input);
        free(jobs[i].stem);
        fu_tensor_free(jobs[i].thumb);
    }
    free(jobs);
}

/* ---------------------------------------------------------------- config */

/* --identity, --race, --attr NAME=V[,NAME=V...] as loss terms (weights: identity 5 as in the
 * paper's runs, race and attributes 1), added to the first-wave loss. --race keep adds
 * RACE_IS_0 here; each thumbnail's prediction replaces the class before its search. */
static int add_face_terms(const options *o, fu_loss_spec *spec) {
    int rc = FU_OK;
    if (o->identity && fu_loss_find(spec, FU_TERM_IDENTITY_SCORE) < 0 && fu_loss_find(spec, FU_TERM_L2_IDENTITY) < 0)
        rc = fu_loss_add(spec, (fu_loss_term){.kind = FU_TERM_IDENTITY_SCORE, .weight = 5});
    if (rc == FU_OK && o->race) {
        int k = strcmp(o->race, "keep") ? fu_race_parse(o->race) : 0;
        if (k < 0) return fu_fail(FU_E_INPUT, "--race expects keep, white, black, asian, indian or other, got '%s'", o->race);
        rc = fu_loss_add(spec, (fu_loss_term){.kind = FU_TERM_RACE, .index = k, .weight = 1});
    }
    for (const char *p = o->attr; rc == FU_OK && p && *p;) {
        size_t len = strcspn(p, ","), name_len = strcspn(p, "=");
        if (name_len >= len || len != name_len + 2 || (p[name_len + 1] != '0' && p[name_len + 1] != '1'))
            return fu_fail(FU_E_INPUT, "--attr expects NAME=0 or NAME=1 (CelebA names, e.g. Smiling=1), got '%.*s'", (int)len, p);
        int k = fu_celeba_attr_index(p, name_len);
        if (k < 0) return fu_fail(FU_E_INPUT, "--attr: unknown CelebA attribute '%.*s'", (int)name_len, p);
        for (int t = 0; t < spec->n_terms; t++)
            if (spec->terms[t].kind == FU_TERM_ATTR && spec->terms[t].index == k)
                return fu_fail(FU_E_INPUT, "--attr: %.*s is given twice (or also in --loss)", (int)name_len, p);
        rc = fu_loss_add(spec, (fu_loss_term){.kind = FU_TERM_ATTR, .index = k, .value = p[name_len + 1] - '0', .weight = 1});
        p += len + (p[len] == ',');
    }
    return rc;
}

static int make_config(const options *o, fu_search_config *cfg) {
    *cfg = fu_search_defaults();
    int rc = fu_loss_parse(o->loss, &cfg->loss);
    if (rc == FU_OK && o->loss2) { rc = fu_loss_parse(o->loss2, &cfg->loss2); cfg->has_loss2 = 1; }
    if (rc == FU_OK) rc = fu_lr_schedule_parse(o->schedule, &cfg->schedule);
    if (rc == FU_OK) rc = fu_noise_mode_parse(o->noise, &cfg->noise);
    if (rc == FU_OK) rc = add_face_terms(o, &cfg->loss);
    cfg->n_seeds = o->seeds;
    cfg->first_seed = (uint64_t)o->first_seed;
    cfg->steps = o->steps;
    cfg->lr = o->lr;
    cfg->eps = o->eps;
    cfg->trainable_noise_layers = o->trainable_noise;
    cfg->random_init = o->random_init;
    return rc;
}

/* Opens --generator or the shipped default; path (PATH_CAP) receives the file opened. */
static int open_generator(const options *o, fu_generator **gen, char *path) {
    if (o->generator) snprintf(path, PATH_CAP, "%s", o->generator);
    else fu_shipped_path(DEFAULT_GENERATOR, path, PATH_CAP);
    struct stat st;
    if (!o->generator && stat(path, &st) != 0)
        return fu_fail(FU_E_INPUT, "%s not found: faceup's own generator is made by 'faceup train generator'; or pass "
                                   "--generator FILE (a StyleGAN2 checkpoint, or PULSE's StyleGAN v1 synthesis.pt with --gaussfit)", path);
    return fu_generator_open(path, o->gaussfit, gen);
}

/* ---------------------------------------------------------------- outputs */

/* base + suffix + the job's extension. */
static void output_name(const job *j, const char *suffix, char *path, size_t cap) {
    snprintf(path, cap, "%s%s%s", j->base, suffix, j->ext);
}

static int save_as(const fu_tensor *img, const job *j, const char *suffix) {
    char path[PATH_CAP + 64];
    output_name(j, suffix, path, sizeof path);
    return outpath_save(path, img);
}

/* Done only when its result exists: a "no solution" attempt is retried. */
static int finished(const job *j) {
    char path[PATH_CAP + 32];
    struct stat st;
    output_name(j, "", path, sizeof path);
    return stat(path, &st) == 0;
}

static void on_step(void *ctx, const fu_search_step *s) {
    run_ctx *c = ctx;
    char note[96];
    snprintf(note, sizeof note, "seed %d loss %.4f L2 %.5f", s->seed_index, (double)s->loss, (double)s->l2);
    long done = c->done_before + (long)(s->seed_index * c->waves + s->wave) * s->steps + s->step + 1;
    progress_update(&c->bar, done, (long)c->opt->seeds * c->waves * s->steps, note);
    if (!c->opt->save_intermediate || c->write_failed) return;
    char suffix[64];
    snprintf(suffix, sizeof suffix, "_seed%d_w%d_step%03d", (int)(c->opt->first_seed + s->seed_index), s->wave + 1, s->step);
    if (save_as(s->best_image, c->jb, suffix) != FU_OK) c->write_failed = 1;
}

/* The wave whose image a seed reports. */
static const fu_search_wave *final_wave(const fu_search_result *r) {
    return r->wave[1].ran && r->wave[1].status == FU_OK ? &r->wave[1] : &r->wave[0];
}

/* Best seed: accepted ones first, then the lowest loss. */
static int best_seed(const fu_search_result *r, int n) {
    int best = 0;
    for (int k = 1; k < n; k++) {
        int ok_k = r[k].status == FU_OK, ok_b = r[best].status == FU_OK;
        if (ok_k > ok_b || (ok_k == ok_b && final_wave(&r[k])->loss < final_wave(&r[best])->loss)) best = k;
    }
    return best;
}

/* The best image, and each seed's with several; a result replaces an earlier "no solution". */
static int save_results(const job *j, const fu_search_result *r, int n, int best) {
    int rc = save_as(r[best].image, j, r[best].status == FU_OK ? "" : "_no_solution");
    for (int k = 0; rc == FU_OK && n > 1 && k < n; k++) {
        char suffix[64];
        snprintf(suffix, sizeof suffix, "_seed%llu%s", (unsigned long long)r[k].seed, r[k].status == FU_OK ? "" : "_no_solution");
        rc = save_as(r[k].image, j, suffix);
    }
    char path[PATH_CAP + 32];
    output_name(j, r[best].status == FU_OK ? "" : "_no_solution", path, sizeof path);
    if (rc == FU_OK) outpath_announce("upscale", path);
    output_name(j, "_no_solution", path, sizeof path);
    if (rc == FU_OK && r[best].status == FU_OK) remove(path);
    return rc;
}

/* ---------------------------------------------------------------- JSON */

static cJSON *wave_json(const fu_search_wave *w, const fu_loss_spec *spec) {
    cJSON *o = cJSON_CreateObject(), *terms = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "met_eps", w->status == FU_OK);
    cJSON_AddNumberToObject(o, "loss", json_float(w->loss));
    cJSON_AddNumberToObject(o, "l2", json_float(w->l2));
    for (int i = 0; i < spec->n_terms; i++) {
        char name[48];
        cJSON_AddNumberToObject(terms, fu_loss_term_name(&spec->terms[i], name, sizeof name), json_float(w->terms[i]));
    }
    cJSON_AddItemToObject(o, "terms", terms);
    cJSON_AddNumberToObject(o, "best_step", w->best_step);
    cJSON_AddNumberToObject(o, "steps", w->steps);
    cJSON_AddNumberToObject(o, "seconds", w->seconds);
    return o;
}

/* A thumbnail's record: r NULL for one set aside (its error) or skipped (its existing output). */
static cJSON *job_json(const job *j, const fu_search_config *cfg, const fu_search_result *r, int n, int best) {
    cJSON *o = cJSON_CreateObject();
    char path[PATH_CAP + 32];
    cJSON_AddStringToObject(o, "input", j->input);
    cJSON_AddStringToObject(o, "status", j->status ? "error" : !r ? "skipped" : r[best].status == FU_OK ? "ok" : "no_solution");
    if (j->status) cJSON_AddStringToObject(o, "error", j->error);
    if (j->status) return o;
    output_name(j, !r || r[best].status == FU_OK ? "" : "_no_solution", path, sizeof path);
    cJSON_AddStringToObject(o, "output", path);
    if (!r) return o;
    cJSON *seeds = cJSON_CreateArray();
    cJSON_AddNumberToObject(o, "best_seed", (double)r[best].seed);
    for (int k = 0; k < n; k++) {
        cJSON *s = cJSON_CreateObject(), *waves = cJSON_CreateArray();
        cJSON_AddNumberToObject(s, "seed", (double)r[k].seed);
        cJSON_AddStringToObject(s, "status", r[k].status == FU_OK ? "ok" : "no_solution");
        cJSON_AddItemToArray(waves, wave_json(&r[k].wave[0], &cfg->loss));
        if (r[k].wave[1].ran) cJSON_AddItemToArray(waves, wave_json(&r[k].wave[1], &cfg->loss2));
        cJSON_AddItemToObject(s, "waves", waves);
        cJSON_AddItemToArray(seeds, s);
    }
    cJSON_AddItemToObject(o, "seeds", seeds);
    return o;
}

static cJSON *run_json(const options *o, const fu_generator *gen, const char *gen_path, const fu_search_config *cfg, int face_terms) {
    cJSON *root = cJSON_CreateObject();
    char buf[1024];
    cJSON_AddStringToObject(root, "generator", gen_path);
    cJSON_AddStringToObject(root, "generator_kind", gen->kind);
    cJSON_AddNumberToObject(root, "resolution", gen->resolution);
    cJSON_AddStringToObject(root, "loss", fu_loss_spec_string(&cfg->loss, buf, sizeof buf));
    if (cfg->has_loss2) cJSON_AddStringToObject(root, "loss2", fu_loss_spec_string(&cfg->loss2, buf, sizeof buf));
    cJSON_AddNumberToObject(root, "eps", json_float(cfg->eps));
    cJSON_AddNumberToObject(root, "steps", cfg->steps);
    cJSON_AddNumberToObject(root, "lr", json_float(cfg->lr));
    cJSON_AddNumberToObject(root, "face_jitter", json_float(o->face_jitter));
    cJSON_AddStringToObject(root, "schedule", o->schedule);
    cJSON_AddStringToObject(root, "noise", o->noise);
    if (o->race) cJSON_AddStringToObject(root, "race", o->race);   /* keep: each result's RACE_IS_k is in its terms */
    if (face_terms) cJSON_AddItemToObject(root, "face_networks", guide_flags_json(&o->guide));
    cJSON_AddItemToObject(root, "results", cJSON_CreateArray());
    return root;
}

/* ---------------------------------------------------------------- sheet */

/* Draws text on line `line` of cell `cell` of a sheet row of R x R cells, cut to the cell's width. */
static void cell_text(fu_tensor *row, int cell, int line, int R, const char *text) {
    int scale = R >= 256 ? R / 128 : 1, pad = 2 * scale;
    fu_draw_text_cut(row, cell * R + pad, pad + line * 7 * scale, scale, R - 2 * pad, text);
}

/* Labels in the top-left corner of each cell: the method and the thumbnail's file name, the seed
 * (the chosen one marked "best") and its downscale L2, and "reference" over the last cell when
 * the row has one. */
static void label_row(fu_tensor *row, const char *stem, const fu_search_result *r, int n_seeds, int best, int has_reference, int R) {
    cell_text(row, 0, 0, R, "nearest");
    cell_text(row, 0, 1, R, stem);
    cell_text(row, 1, 0, R, "bicubic");
    for (int k = 0; k < n_seeds; k++) {
        char top[32], bottom[32];
        snprintf(top, sizeof top, "seed %llu%s", (unsigned long long)r[k].seed, r[k].status != FU_OK ? " fail" : n_seeds > 1 && k == best ? " best" : "");
        snprintf(bottom, sizeof bottom, "L2 %.5f", (double)final_wave(&r[k])->l2);
        cell_text(row, k + 2, 0, R, top);
        cell_text(row, k + 2, 1, R, bottom);
    }
    if (has_reference) cell_text(row, n_seeds + 2, 0, R, "reference");
}

/* Row of the sheet: thumbnail nearest | thumbnail bicubic | each seed's image | the reference
 * face (--identity, may be NULL), [1,3,R,(2+n+1)R], labelled. */
static fu_tensor *sheet_row(const job *j, const fu_search_result *r, int n, int best, fu_tensor *reference, int R) {
    fu_graph *g = fu_graph_new();
    fu_tensor *cells[2 + 64 + 1];
    int f = R / (int)j->thumb->shape[2], n_seeds = n < 64 ? n : 64, n_cells = 2 + n_seeds;
    cells[0] = fu_upsample_nearest(g, j->thumb, f);
    cells[1] = fu_clamp(g, fu_resize_bicubic(g, j->thumb, R, R), 0, 1);
    for (int k = 0; k < n_seeds; k++) cells[k + 2] = r[k].image;
    if (reference) cells[n_cells++] = reference;
    fu_tensor *row = fu_concat(g, cells, n_cells, 3), *copy = row ? fu_tensor_clone(row) : NULL;
    fu_graph_free(g);
    if (copy) label_row(copy, j->stem, r, n_seeds, best, reference != NULL, R);
    return copy;
}

static int write_sheet(const char *path, fu_tensor *const *rows, int n_rows) {
    if (n_rows == 0) return FU_OK;
    fu_graph *g = fu_graph_new();
    fu_tensor *sheet = fu_concat(g, rows, n_rows, 2);
    int rc = sheet ? outpath_save(path, sheet) : (fu_last_code() ? fu_last_code() : FU_E_INTERNAL);
    if (rc == FU_OK) outpath_announce("upscale", path);
    fu_graph_free(g);
    return rc;
}

/* ---------------------------------------------------------------- the command */

/* Per result: what the face networks say about each seed's image. */
static int add_face_json(const upscale_face *uf, const fu_search_result *r, int n, cJSON *job) {
    cJSON *seeds = cJSON_GetObjectItem(job, "seeds");
    for (int k = 0; uf->active && k < n; k++) {
        cJSON *face = upscale_face_json(uf, r[k].image);
        if (!face) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
        cJSON_AddItemToObject(cJSON_GetArrayItem(seeds, k), "face", face);
    }
    return FU_OK;
}

/* Which race --race keep aims at, and how sure the thumbnail classifier is. On the held-out
 * thumbnails of eval upscale it is right for about 40% of the faces it gives less than 0.6 and for
 * 66% (16x16) / 87% (8x8) of the others (bench/RESULTS.md), so below 0.6 the user hears that the
 * target is a guess. */
static void report_kept_race(const char *input, const cJSON *keep) {
    const cJSON *t = cJSON_GetObjectItem(keep, "thumbnail_race");
    const char *cls = cJSON_GetStringValue(cJSON_GetObjectItem(t, "class"));
    if (!cls) return;
    double p = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "probabilities"), cls));
    fprintf(stderr, "faceup upscale: %s: keeping the thumbnail's race: %s (p %.2f)%s\n", input, cls, p,
            p < 0.6 ? "; uncertain at this size: --race CLASS sets it" : "");
}

static int upscale_one(const options *o, const fu_generator *gen, fu_search_config *cfg, const upscale_face *uf, const job *j,
                       cJSON *results, fu_tensor **sheet_row_out, int *no_solution) {
    fu_search_result *r = calloc((size_t)o->seeds, sizeof *r);
    if (!r) return fu_fail(FU_E_INTERNAL, "out of memory");
    char label[256];
    snprintf(label, sizeof label, "upscale %.200s", j->stem);
    run_ctx ctx = {.opt = o, .jb = j, .waves = cfg->has_loss2 ? 2 : 1};
    progress_start(&ctx.bar, label, o->quiet);
    cfg->on_step = on_step;
    cfg->ctx = &ctx;
    cJSON *keep = cJSON_CreateObject();
    int rc = o->race && !strcmp(o->race, "keep") ? upscale_face_keep_race(uf, j->thumb, &cfg->loss, keep) : FU_OK;
    if (rc == FU_OK && !o->quiet) report_kept_race(j->input, keep);
    if (rc == FU_OK) rc = fu_search_run(gen, j->thumb, cfg, r);
    progress_finish(&ctx.bar);
    if (rc == FU_OK && ctx.write_failed) rc = fu_last_code() ? fu_last_code() : FU_E_INPUT;
    if (rc == FU_OK) {
        int best = best_seed(r, o->seeds);
        rc = save_results(j, r, o->seeds, best);
        if (rc == FU_OK && o->sheet && !(*sheet_row_out = sheet_row(j, r, o->seeds, best, uf->reference, gen->resolution))) rc = FU_E_INTERNAL;
        cJSON *jj = job_json(j, cfg, r, o->seeds, best);
        char loss[1024];
        cJSON_AddStringToObject(jj, "loss", fu_loss_spec_string(&cfg->loss, loss, sizeof loss));   /* with --race keep, this thumbnail's RACE_IS_k */
        cJSON_AddItemToArray(results, jj);
        if (rc == FU_OK) rc = add_face_json(uf, r, o->seeds, jj);
        if (cJSON_GetObjectItem(keep, "thumbnail_race")) cJSON_AddItemToObject(jj, "thumbnail_race", cJSON_DetachItemFromObject(keep, "thumbnail_race"));
        *no_solution = r[best].status != FU_OK;
        if (*no_solution) fprintf(stderr, "faceup upscale: %s: no seed met eps %g (best L2 %.5f); best attempt saved as %s_no_solution%s\n",
                                  j->input, (double)o->eps, (double)final_wave(&r[best])->l2, j->base, j->ext);
    }
    cJSON_Delete(keep);
    fu_search_results_free(r, o->seeds);
    free(r);
    return rc;
}

/* *worst: the worst exit status of the thumbnails run here. */
static int run_jobs(const options *o, const fu_dist *dist, const fu_generator *gen, fu_search_config *cfg, const upscale_face *uf,
                    job *jobs, int n, cJSON *root, int *worst) {
    cJSON *results = cJSON_GetObjectItem(root, "results");
    fu_tensor **rows = calloc((size_t)n, sizeof *rows);
    int n_rows = 0, rc = rows ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int i = dist->rank; rc == FU_OK && i < n; i += dist->size) {
        int failed = 0;
        if (jobs[i].status) {
            cJSON_AddItemToArray(results, job_json(&jobs[i], cfg, NULL, 0, 0));
            *worst = exit_worst(*worst, jobs[i].status);
        } else if (!o->overwrite && finished(&jobs[i])) {
            fprintf(stderr, "faceup upscale: %s: done already (%s%s), skipped (--overwrite redoes it)\n", jobs[i].input, jobs[i].base, jobs[i].ext);
            cJSON_AddItemToArray(results, job_json(&jobs[i], cfg, NULL, 0, 0));
        } else {
            rc = upscale_one(o, gen, cfg, uf, &jobs[i], results, &rows[n_rows], &failed);
            if (rows[n_rows]) n_rows++;
        }
        cJSON *last = cJSON_GetArrayItem(results, cJSON_GetArraySize(results) - 1);
        if (dist->size > 1 && last) cJSON_AddNumberToObject(last, "rank", dist->rank);
        *worst = exit_worst(*worst, failed ? FU_E_NO_SOLUTION : FU_OK);
    }
    if (rc == FU_OK && o->sheet) rc = write_sheet(o->sheet, rows, n_rows);
    for (int i = 0; rows && i < n_rows; i++) fu_tensor_free(rows[i]);
    free(rows);
    return rc;
}

/* The top-level "loss" is the one every searched thumbnail used: --race keep picks RACE_IS_k per
 * thumbnail, so then it is set from the results, or removed when they differ (each has its own). */
static void settle_loss(cJSON *root) {
    const char *common = NULL;
    int same = 1;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(root, "results")) {
        const char *loss = cJSON_GetStringValue(cJSON_GetObjectItem(r, "loss"));
        if (!loss) continue;
        if (common && strcmp(common, loss)) same = 0;
        common = loss;
    }
    if (!common) return;
    if (same) cJSON_ReplaceItemInObject(root, "loss", cJSON_CreateString(common));
    else cJSON_DeleteItemFromObject(root, "loss");
}

/* Several ranks: rank 0 collects every rank's results (rank r holds thumbnails r, r + size, ...)
 * into its JSON in thumbnail order, and every rank learns the worst exit status of them all. */
static int merge_ranks(const fu_dist *dist, cJSON *root, int n_jobs, int *worst) {
    double seen[4] = {0};   /* how many ranks saw each exit status as their worst */
    seen[exit_status(*worst)] = 1;
    int rc = fu_dist_allreduce_sum_f64(dist, seen, 4);
    for (int k = 0; k < 4; k++)
        if (seen[k] > 0) *worst = exit_worst(*worst, k);
    cJSON *results = cJSON_GetObjectItem(root, "results");
    char *mine = rc == FU_OK ? cJSON_PrintUnformatted(results) : NULL, *all = NULL;
    if (rc == FU_OK) rc = fu_dist_gather_text(dist, mine ? mine : "", &all);
    free(mine);
    if (rc != FU_OK || dist->rank != 0) return rc;
    cJSON **per_rank = calloc((size_t)dist->size, sizeof *per_rank), *merged = cJSON_CreateArray();
    const char *p = all;
    for (int r = 0; per_rank && r < dist->size; r++, p += strlen(p) + 1) per_rank[r] = cJSON_Parse(p);
    for (int i = 0; per_rank && rc == FU_OK && i < n_jobs; i++) {
        cJSON *item = cJSON_DetachItemFromArray(per_rank[i % dist->size], 0);   /* each rank's list is in its own order */
        if (item) cJSON_AddItemToArray(merged, item);
        else rc = fu_fail(FU_E_INTERNAL, "rank %d sent no result for thumbnail %d", i % dist->size, i);
    }
    for (int r = 0; per_rank && r < dist->size; r++) cJSON_Delete(per_rank[r]);
    if (!per_rank) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    free(per_rank);
    free(all);
    cJSON_ReplaceItemInObject(root, "results", merged);
    return rc;
}

static const char usage_text[] = "THUMB... [-o OUT] [--generator FILE] [--loss STR] [flags]\n"
    "Finds faces whose bicubic downscale matches each thumbnail (PULSE-style latent search).\n"
    "THUMB: PNG/JPEG files or directories; several inputs or a directory need -o DIR.\n"
    "A thumbnail is an FFHQ-aligned face (StyleGAN's framing: eyes level, face centred) whose side is the\n"
    "generator's divided by a power of two, at least 8x8. To make one from a photo:\n"
    "  " ALIGN_HINT "   (a 16x16 thumbnail)\n"
    "An input larger than any thumbnail (or any input with --from-photo) is taken as a photo and turned into\n"
    "that 16x16 thumbnail first (this needs the model cache: tools/fetch-models.sh).\n"
    "-o: a .png or .jpg file, or a folder (an existing one, or a path ending in '/').";

int cmd_upscale(int argc, char **argv) {
    options o = {.loss = "100*L2+0.05*GEOCROSS", .schedule = "linear1cycledrop", .noise = "trainable",
                 .seeds = 1, .steps = 100, .trainable_noise = 5, .lr = 0.4f, .eps = 2e-3f};
    arg_spec specs[] = {
        {"-o", ARG_STRING, &o.out, 0, 0, "output .png/.jpg (one thumbnail) or folder (existing, or ending in '/'; default: STEM_up.png here)"},
        {"--generator", ARG_STRING, &o.generator, 0, 0, "generator .pt/.safetensors (default " DEFAULT_GENERATOR ")"},
        {"--gaussfit", ARG_STRING, &o.gaussfit, 0, 0, "StyleGAN v1: PULSE's gaussian_fit.pt or the mapping network"},
        {"--loss", ARG_STRING, &o.loss, 0, 0, "loss string (default 100*L2+0.05*GEOCROSS)"},
        {"--loss2", ARG_STRING, &o.loss2, 0, 0, "second wave's loss string, from the first wave's result"},
        {"--seeds", ARG_INT, &o.seeds, 1, 64, "random starts (default 1)"},
        {"--random-init", ARG_FLAG, &o.random_init, 0, 0, "start from N(0, I) as PULSE, also for faceup's VAE (default there: its encoder's posterior sample for the thumbnail)"},
        {"--seed", ARG_INT, &o.first_seed, 0, 2147483647, "first seed (default 0)"},
        {"--steps", ARG_INT, &o.steps, 1, 100000, "optimiser steps per wave (default 100)"},
        {"--lr", ARG_FLOAT, &o.lr, 1e-6, 100, "Adam learning rate (default 0.4)"},
        {"--schedule", ARG_STRING, &o.schedule, 0, 0, "fixed | linear1cycle | linear1cycledrop (default)"},
        {"--eps", ARG_FLOAT, &o.eps, 0, 1, "accept when the downscale L2 <= eps (default 2e-3)"},
        {"--noise", ARG_STRING, &o.noise, 0, 0, "zero | fixed | trainable (default)"},
        {"--trainable-noise-layers", ARG_INT, &o.trainable_noise, 0, 32, "noise maps optimised with --noise trainable (default 5)"},
        {"--identity", ARG_STRING, &o.identity, 0, 0, "reference photo: adds 5*IDENTITY_SCORE"},
        {"--race", ARG_STRING, &o.race, 0, 0, "keep | white | black | asian | indian | other: adds 1*RACE_IS_k (keep: the thumbnail's)"},
        {"--face-jitter", ARG_FLOAT, &o.face_jitter, 0, 0.5, "face terms see the chip through a random similarity + mirror of this size, redrawn each step (default 0: fixed)"},
        GUIDE_FLAG_SPECS(o.guide),
        {"--attr", ARG_STRING, &o.attr, 0, 0, "NAME=0|1[,NAME=0|1...] (CelebA names): adds 1*ATTR_k_IS_v each"},
        {"--save-intermediate", ARG_FLAG, &o.save_intermediate, 0, 0, "save the best image so far at every step"},
        {"--sheet", ARG_STRING, &o.sheet, 0, 0, "comparison sheet .png/.jpg: nearest | bicubic | results | reference, a row per thumbnail"},
        {"--from-photo", ARG_FLAG, &o.from_photo, 0, 0, "inputs are photos: each face is detected, FFHQ-aligned and downscaled to a thumbnail first (a quarter of the generator's side, at most 32; automatic for inputs larger than any thumbnail)"},
        {"--no-face-check", ARG_FLAG, &o.no_face_check, 0, 0, "upscale thumbnails that are flat or look like noise (refused by default)"},
        {"--json", ARG_FLAG, &o.json, 0, 0, "print results as JSON on stdout"},
        {"--overwrite", ARG_FLAG, &o.overwrite, 0, 0, "redo thumbnails whose output exists"},
        {"--threads", ARG_INT, &o.threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &o.quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    char **pos = calloc(MAX_INPUTS, sizeof *pos);
    if (!pos) { fprintf(stderr, "faceup upscale: out of memory\n"); return FU_E_INTERNAL; }
    fu_dist dist;
    if (fu_dist_init(&argc, &argv, &dist) != FU_OK) { free(pos); fprintf(stderr, "faceup upscale: %s\n", fu_last_error()); return FU_E_INTERNAL; }
    int n_pos = args_parse("upscale", usage_text, specs, argc, argv, pos, MAX_INPUTS);
    if (n_pos < 0) { free(pos); fu_dist_finalize(); return n_pos == -2 ? FU_OK : FU_E_INPUT; }
    fu_set_threads(o.threads);
    job *jobs = NULL;
    int n_jobs = 0, many = 0, worst = FU_OK, rc;
    fu_search_config cfg;
    fu_generator *gen = NULL;
    upscale_face uf = {0};
    cJSON *root = NULL;
    out_target target, sheet;
    rc = n_pos ? FU_OK : fu_fail(FU_E_INPUT, "no thumbnail given (try --help)");
    if (rc == FU_OK && dist.size > 1 && o.sheet) rc = fu_fail(FU_E_INPUT, "--sheet needs a single process (%d ranks are running)", dist.size);
    if (rc == FU_OK) rc = make_config(&o, &cfg);
    if (rc == FU_OK) rc = guide_flags_check_used(&o.guide, &cfg.loss, cfg.has_loss2 ? &cfg.loss2 : NULL);
    if (rc == FU_OK && o.face_jitter > 0 && !upscale_face_wanted(&cfg.loss, cfg.has_loss2 ? &cfg.loss2 : NULL))
        rc = fu_fail(FU_E_INPUT, "--face-jitter moves what the face networks see, but no face term uses one (add --identity, --race or --attr)");
    if (rc == FU_OK) rc = collect_inputs(pos, n_pos, &jobs, &n_jobs, &many);
    if (rc == FU_OK && many && !o.out) rc = fu_fail(FU_E_INPUT, "several thumbnails or a directory need -o DIR");
    if (rc == FU_OK && o.out) rc = outpath_target("-o", o.out, many, &target);
    if (rc == FU_OK && o.sheet) rc = outpath_file("--sheet", o.sheet, &sheet);
    if (rc == FU_OK) rc = plan_outputs(jobs, n_jobs, o.out ? &target : NULL);
    if (rc == FU_OK) rc = check_collisions(jobs, n_jobs, o.sheet, o.identity);
    char gen_path[PATH_CAP];
    if (rc == FU_OK) rc = open_generator(&o, &gen, gen_path);
    int usable = rc == FU_OK ? load_thumbnails(jobs, n_jobs, gen, &o, &dist) : 0;
    if (rc == FU_OK) rc = guide_flags_resolve(&o.guide);
    if (rc == FU_OK && usable) rc = upscale_face_open(&uf, &o.guide, o.identity, &cfg.loss, cfg.has_loss2 ? &cfg.loss2 : NULL, gen->resolution);
    if (rc == FU_OK && uf.active) rc = fu_face_guides_set_jitter(&uf.g.fg, o.face_jitter);
    if (rc == FU_OK && uf.active) cfg.guides = &uf.guides;
    if (rc == FU_OK && usable) rc = fu_search_check_guides(&cfg.loss, cfg.guides);
    if (rc == FU_OK && usable && cfg.has_loss2) rc = fu_search_check_guides(&cfg.loss2, cfg.guides);
    if (rc == FU_OK && usable && o.out) rc = outpath_make_folder("-o", &target);
    if (rc == FU_OK && !(root = run_json(&o, gen, gen_path, &cfg, uf.active))) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) rc = run_jobs(&o, &dist, gen, &cfg, &uf, jobs, n_jobs, root, &worst);
    int own_rc = rc;
    rc = fu_dist_agree(&dist, rc);   /* every rank reaches this, so none waits for a failed one */
    if (rc == FU_OK && dist.size > 1) rc = merge_ranks(&dist, root, n_jobs, &worst);
    if (rc == FU_OK) {
        settle_loss(root);
        cJSON_AddStringToObject(root, "status", worst == FU_OK ? "ok" : worst == FU_E_NO_SOLUTION ? "no_solution" : "error");
        if (o.json && dist.rank == 0) print_json(root);
    } else if (own_rc != FU_OK || dist.rank == 0) {
        report_failure("upscale", o.json && dist.rank == 0);
    }
    cJSON_Delete(root);
    fu_dist_finalize();
    upscale_face_close(&uf);
    fu_generator_free(gen);
    free_jobs(jobs, n_jobs);
    free(pos);
    return rc != FU_OK ? (rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT) : worst;
}

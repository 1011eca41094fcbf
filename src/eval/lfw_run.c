#include "lfw_run.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "data/embed_cache.h"
#include "faceup.h"

static const char *const metric_names[FU_LFW_N_METRICS] = {"neg-euclidean", "cosine", "cosine-centered"};

const char *fu_lfw_metric_name(fu_lfw_metric m) { return metric_names[m]; }

int fu_lfw_metric_parse(const char *name) {
    for (int i = 0; i < FU_LFW_N_METRICS; i++)
        if (!strcmp(name, metric_names[i])) return i;
    return -1;
}

void fu_lfw_subset(fu_lfw_pairs *pairs, int max_pairs) {
    if (max_pairs <= 0 || max_pairs >= pairs->n) return;
    int m = max_pairs / (2 * pairs->n_folds);
    if (m < 1) m = 1;
    if (m >= pairs->per_fold) return;
    int kept = 0;
    for (int i = 0; i < pairs->n; i++) {
        int pos = i % (2 * pairs->per_fold);   /* same pairs first, then different ones */
        if (pos < m || (pos >= pairs->per_fold && pos < pairs->per_fold + m)) pairs->pairs[kept++] = pairs->pairs[i];
    }
    pairs->per_fold = m;
    pairs->n = kept;
}

/* ---------- the unique images ---------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted unique paths of the images the pairs name, and each pair's two indices. */
static int collect_images(const char *dir, const fu_lfw_pairs *pairs, fu_lfw_embeddings *e) {
    char **all = fu_malloc((size_t)pairs->n * 2 * sizeof *all);
    e->pair_image = fu_malloc((size_t)pairs->n * 2 * sizeof *e->pair_image);
    if (!all || !e->pair_image) return free(all), FU_E_INTERNAL;
    int rc = FU_OK, m = 0;
    for (int i = 0; i < pairs->n && rc == FU_OK; i++)
        for (int s = 0; s < 2 && rc == FU_OK; s++) {
            char path[4096];
            rc = fu_lfw_image_path(dir, pairs->pairs[i].name[s], pairs->pairs[i].index[s], path, sizeof path);
            if (rc == FU_OK && !(all[m++] = strdup(path))) rc = fu_fail(FU_E_INTERNAL, "out of memory");
        }
    if (rc == FU_OK) {
        qsort(all, (size_t)m, sizeof *all, cmp_str);
        e->paths = fu_malloc((size_t)m * sizeof *e->paths);
        rc = e->paths ? FU_OK : FU_E_INTERNAL;
    }
    for (int i = 0; i < m; i++) {
        if (rc == FU_OK && (e->n_images == 0 || strcmp(e->paths[e->n_images - 1], all[i]))) e->paths[e->n_images++] = all[i];
        else free(all[i]);
    }
    free(all);
    return rc;
}

/* Index of each pair's images and each image's fold. */
static int link_pairs(const char *dir, const fu_lfw_pairs *pairs, fu_lfw_embeddings *e) {
    e->image_fold = fu_malloc((size_t)e->n_images * sizeof *e->image_fold);
    if (!e->image_fold) return FU_E_INTERNAL;
    for (int i = 0; i < e->n_images; i++) e->image_fold[i] = -1;
    for (int i = 0; i < pairs->n; i++)
        for (int s = 0; s < 2; s++) {
            char path[4096], *key = path;
            fu_lfw_image_path(dir, pairs->pairs[i].name[s], pairs->pairs[i].index[s], path, sizeof path);
            char **hit = bsearch(&key, e->paths, (size_t)e->n_images, sizeof *e->paths, cmp_str);
            int k = (int)(hit - e->paths);
            e->pair_image[2 * i + s] = k;
            if (e->image_fold[k] < 0) e->image_fold[k] = pairs->pairs[i].fold;
        }
    return FU_OK;
}

/* ---------- embedding ---------- */

/* Looks every image up in the cache; the indices still to compute go to todo. */
static int from_cache(fu_lfw_embeddings *e, fu_ecache *cache, fu_ecache_key *keys, int *todo, int *n_todo) {
    *n_todo = 0;
    for (int i = 0; i < e->n_images; i++) {
        int rc = fu_ecache_key_file(e->paths[i], &keys[i]);
        if (rc != FU_OK) return rc;
        if (cache && fu_ecache_get(cache, keys[i], e->vectors + (size_t)i * e->dim)) e->found[i] = 1, e->n_cached++;
        else todo[(*n_todo)++] = i;
    }
    return FU_OK;
}

static int compute_missing(fu_lfw_embeddings *e, const int *todo, int n_todo, fu_face_finder *finder, fu_face_net *net,
                           const fu_lfw_embed_opts *opts, fu_ecache *cache, const fu_ecache_key *keys) {
    const char **paths = fu_malloc((size_t)(n_todo ? n_todo : 1) * sizeof *paths);
    float *vec = fu_malloc((size_t)(n_todo ? n_todo : 1) * e->dim * sizeof *vec);
    fu_face_file_result *res = fu_malloc((size_t)(n_todo ? n_todo : 1) * sizeof *res);
    int rc = paths && vec && res ? FU_OK : FU_E_INTERNAL;
    for (int j = 0; j < n_todo && rc == FU_OK; j++) paths[j] = e->paths[todo[j]];
    if (rc == FU_OK)
        rc = fu_face_run_files(finder, &net, 1, paths, n_todo, opts->batch, &vec, res, opts->progress, opts->progress_ctx);
    for (int j = 0; j < n_todo && rc == FU_OK; j++) {
        int i = todo[j];
        if (res[j].status != FU_OK) {
            if (!opts->quiet) fprintf(stderr, "faceup eval lfw: warning: %s\n", res[j].error);
            continue;
        }
        e->found[i] = 1;
        memcpy(e->vectors + (size_t)i * e->dim, vec + (size_t)j * e->dim, (size_t)e->dim * sizeof *vec);
        if (cache) rc = fu_ecache_put(cache, keys[i], vec + (size_t)j * e->dim);
    }
    free(paths);
    free(vec);
    free(res);
    return rc;
}

static int embed_images(fu_lfw_embeddings *e, fu_face_finder *finder, fu_face_net *net, const fu_lfw_embed_opts *opts) {
    char tag[128];
    fu_face_net_cache_tag(net, tag, sizeof tag);
    fu_ecache *cache = opts->cache_path ? fu_ecache_open(opts->cache_path, tag, e->dim) : NULL;
    fu_ecache_key *keys = fu_malloc((size_t)e->n_images * sizeof *keys);
    int *todo = fu_malloc((size_t)e->n_images * sizeof *todo);
    int n_todo = 0;
    int rc = keys && todo && (cache || !opts->cache_path) ? FU_OK : FU_E_INTERNAL;
    if (rc == FU_OK) rc = from_cache(e, cache, keys, todo, &n_todo);
    if (rc == FU_OK) rc = compute_missing(e, todo, n_todo, finder, net, opts, cache, keys);
    if (rc == FU_OK && cache && n_todo) rc = fu_ecache_save(cache);
    for (int i = 0; i < e->n_images; i++) e->n_missing += !e->found[i];
    fu_ecache_free(cache);
    free(keys);
    free(todo);
    return rc;
}

int fu_lfw_embed(const char *dir, const fu_lfw_pairs *pairs, fu_face_finder *finder, fu_face_net *net,
                 const fu_lfw_embed_opts *opts, fu_lfw_embeddings *out) {
    memset(out, 0, sizeof *out);
    out->dim = fu_face_net_out_dim(net);
    int rc = collect_images(dir, pairs, out);
    if (rc == FU_OK) rc = link_pairs(dir, pairs, out);
    if (rc == FU_OK) {
        out->vectors = fu_malloc((size_t)out->n_images * out->dim * sizeof(float));
        out->found = calloc((size_t)out->n_images, sizeof *out->found);
        rc = out->vectors && out->found ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    }
    if (rc == FU_OK) rc = embed_images(out, finder, net, opts);
    if (rc != FU_OK) fu_lfw_embeddings_free(out);
    return rc;
}

void fu_lfw_embeddings_free(fu_lfw_embeddings *e) {
    for (int i = 0; e->paths && i < e->n_images; i++) free(e->paths[i]);
    free(e->paths);
    free(e->vectors);
    free(e->found);
    free(e->pair_image);
    free(e->image_fold);
    memset(e, 0, sizeof *e);
}

/* ---------- scores ---------- */

static double pair_score(const float *a, const float *b, const double *mean, int dim, fu_lfw_metric metric) {
    double dot = 0, na = 0, nb = 0, d2 = 0;
    for (int k = 0; k < dim; k++) {
        double x = a[k] - (mean ? mean[k] : 0), y = b[k] - (mean ? mean[k] : 0);
        dot += x * y, na += x * x, nb += y * y, d2 += (x - y) * (x - y);
    }
    if (metric == FU_LFW_NEG_EUCLIDEAN) return -sqrt(d2);
    return na > 0 && nb > 0 ? dot / sqrt(na * nb) : 0;
}

/* Mean vector of the found images outside fold `fold` (all images when fold < 0). */
static void mean_outside_fold(const fu_lfw_embeddings *e, int fold, double *mean) {
    int count = 0;
    memset(mean, 0, (size_t)e->dim * sizeof *mean);
    for (int i = 0; i < e->n_images; i++) {
        if (!e->found[i] || (fold >= 0 && e->image_fold[i] == fold)) continue;
        for (int k = 0; k < e->dim; k++) mean[k] += e->vectors[(size_t)i * e->dim + k];
        count++;
    }
    for (int k = 0; count && k < e->dim; k++) mean[k] /= count;
}

int fu_lfw_scores(const fu_lfw_embeddings *e, const fu_lfw_pairs *pairs, fu_lfw_metric metric, float *scores) {
    double *mean = metric == FU_LFW_COSINE_CENTERED ? fu_malloc((size_t)pairs->n_folds * e->dim * sizeof *mean) : NULL;
    if (metric == FU_LFW_COSINE_CENTERED && !mean) return FU_E_INTERNAL;
    for (int f = 0; mean && f < pairs->n_folds; f++) mean_outside_fold(e, f, mean + (size_t)f * e->dim);
    double lowest = INFINITY;
    for (int i = 0; i < pairs->n; i++) {
        int a = e->pair_image[2 * i], b = e->pair_image[2 * i + 1];
        if (!e->found[a] || !e->found[b]) continue;
        const double *m = mean ? mean + (size_t)pairs->pairs[i].fold * e->dim : NULL;
        scores[i] = (float)pair_score(e->vectors + (size_t)a * e->dim, e->vectors + (size_t)b * e->dim, m, e->dim, metric);
        if (scores[i] < lowest) lowest = scores[i];
    }
    if (!isfinite(lowest)) lowest = 0;
    for (int i = 0; i < pairs->n; i++)
        if (!e->found[e->pair_image[2 * i]] || !e->found[e->pair_image[2 * i + 1]]) scores[i] = (float)lowest - 1.0f;
    free(mean);
    return FU_OK;
}

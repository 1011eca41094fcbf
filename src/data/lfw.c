#include "data/lfw.h"
#include "core/error.h"
#include "io/fileutil.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAIRS_FILE (16u << 20)
#define MAX_TOKENS 5

/* Splits one line into whitespace-separated tokens (in place); returns the count, or
 * MAX_TOKENS when there are too many. */
static int split_line(char *line, char **tok) {
    int n = 0;
    char *save = NULL;
    for (char *p = strtok_r(line, " \t\r", &save); p; p = strtok_r(NULL, " \t\r", &save)) {
        if (n == MAX_TOKENS) return MAX_TOKENS;
        tok[n++] = p;
    }
    return n;
}

static int parse_count(const char *s, int max, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 1 || v > max) return 0;
    *out = (int)v;
    return 1;
}

static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (!n || n >= FU_LFW_MAX_NAME || s[0] == '.') return 0;
    for (; *s; s++) if (!isalnum((unsigned char)*s) && !strchr("_-.'", *s)) return 0;
    return 1;
}

static int parse_pair(char **tok, int n_tok, fu_lfw_pair *p) {
    int is_same = n_tok == 3;
    if (n_tok != 3 && n_tok != 4) return 0;
    const char *n1 = tok[0], *n2 = is_same ? tok[0] : tok[2];
    const char *i1 = tok[1], *i2 = is_same ? tok[2] : tok[3];
    if (!valid_name(n1) || !valid_name(n2)) return 0;
    if (!parse_count(i1, 99999, &p->index[0]) || !parse_count(i2, 99999, &p->index[1])) return 0;
    strcpy(p->name[0], n1);
    strcpy(p->name[1], n2);
    p->same = is_same;
    return 1;
}

int fu_lfw_parse_pairs(const char *text, size_t len, const char *label, fu_lfw_pairs *out) {
    memset(out, 0, sizeof *out);
    char *buf = fu_malloc(len + 1);
    if (!buf) return FU_E_INTERNAL;
    memcpy(buf, text, len);
    buf[len] = 0;
    int line_no = 0, k = 0, rc = FU_OK;
    char *save = NULL, *tok[MAX_TOKENS];
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        int n_tok = split_line(line, tok);
        if (line_no == 1) {
            if (n_tok != 2 || !parse_count(tok[0], 16, &out->n_folds) || !parse_count(tok[1], 100000, &out->per_fold)) {
                rc = fu_fail(FU_E_INPUT, "%s: line 1 must be 'FOLDS PAIRS' (at most 16 folds)", label);
                break;
            }
            out->n = out->n_folds * 2 * out->per_fold;
            out->pairs = fu_calloc((size_t)out->n, sizeof *out->pairs);
            if (!out->pairs) { rc = FU_E_INTERNAL; break; }
            continue;
        }
        if (k == out->n) { rc = fu_fail(FU_E_INPUT, "%s: line %d: more pairs than the header's %d", label, line_no, out->n); break; }
        fu_lfw_pair *p = &out->pairs[k];
        int pos = k % (2 * out->per_fold);
        p->fold = k / (2 * out->per_fold);
        if (!parse_pair(tok, n_tok, p) || p->same != (pos < out->per_fold)) {
            rc = fu_fail(FU_E_INPUT, "%s: line %d: expected a %s pair ('%s')", label, line_no,
                         pos < out->per_fold ? "same-person" : "different-person",
                         pos < out->per_fold ? "name i j" : "name1 i name2 j");
            break;
        }
        k++;
    }
    if (rc == FU_OK && (line_no == 0 || k != out->n))
        rc = fu_fail(FU_E_INPUT, "%s: %d pairs, the header promises %d", label, k, out->n);
    free(buf);
    if (rc != FU_OK) fu_lfw_pairs_free(out);
    return rc;
}

int fu_lfw_load_pairs(const char *dir, fu_lfw_pairs *out) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/pairs.txt", dir) >= (int)sizeof path)
        return fu_fail(FU_E_INPUT, "lfw: folder name too long");
    unsigned char *data;
    size_t size;
    int rc = fu_read_file(path, MAX_PAIRS_FILE, &data, &size);
    if (rc != FU_OK) return rc;
    rc = fu_lfw_parse_pairs((const char *)data, size, path, out);
    free(data);
    return rc;
}

void fu_lfw_pairs_free(fu_lfw_pairs *p) {
    free(p->pairs);
    memset(p, 0, sizeof *p);
}

int fu_lfw_image_path(const char *dir, const char *name, int index, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%s/images/%s/%s_%04d.jpg", dir, name, name, index);
    if (n < 0 || (size_t)n >= cap) return fu_fail(FU_E_INPUT, "lfw: path of %s %d too long", name, index);
    return FU_OK;
}

typedef struct { float score; int same; } scored;

static int by_score(const void *a, const void *b) {
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x > y) - (x < y);
}

/* Threshold maximising accuracy of "same if score > t" over items (sorted ascending here).
 * Sweeps t from below the minimum through the midpoints of distinct neighbours. */
static double best_threshold(scored *s, int n) {
    qsort(s, (size_t)n, sizeof *s, by_score);
    int n_same = 0;
    for (int i = 0; i < n; i++) n_same += s[i].same;
    int correct = n_same;                 /* t below everything: all called "same" */
    int best = correct;
    double best_t = s[0].score - 1.0;
    for (int i = 0; i < n; i++) {
        correct += s[i].same ? -1 : 1;    /* item i moves to "different" */
        if (i + 1 < n && s[i + 1].score == s[i].score) continue;
        if (correct > best) {
            best = correct;
            best_t = i + 1 < n ? 0.5 * ((double)s[i].score + s[i + 1].score) : s[i].score + 1.0;
        }
    }
    return best_t;
}

/* Area under the ROC = P(score of a same pair > score of a different pair), ties count half. */
static double roc_auc(scored *s, int n) {
    qsort(s, (size_t)n, sizeof *s, by_score);
    double n_same = 0, n_diff = 0, wins = 0;
    for (int i = 0; i < n;) {
        int j = i, same = 0, diff = 0;
        while (j < n && s[j].score == s[i].score) { same += s[j].same; diff += !s[j].same; j++; }
        wins += same * (n_diff + 0.5 * diff);   /* same pairs above the differents seen so far */
        n_same += same;
        n_diff += diff;
        i = j;
    }
    return n_same && n_diff ? wins / (n_same * n_diff) : 0.0;
}

int fu_lfw_evaluate(const fu_lfw_pairs *pairs, const float *scores, fu_lfw_result *res) {
    memset(res, 0, sizeof *res);
    if (pairs->n_folds < 2 || pairs->n_folds > 16) return fu_fail(FU_E_INPUT, "lfw: need 2 to 16 folds, got %d", pairs->n_folds);
    for (int i = 0; i < pairs->n; i++)
        if (!isfinite(scores[i])) return fu_fail(FU_E_INPUT, "lfw: score of pair %d is not finite", i);
    scored *s = fu_malloc((size_t)pairs->n * sizeof *s);
    if (!s) return FU_E_INTERNAL;
    res->n_folds = pairs->n_folds;
    for (int k = 0; k < pairs->n_folds; k++) {
        int m = 0;
        for (int i = 0; i < pairs->n; i++)
            if (pairs->pairs[i].fold != k) s[m++] = (scored){scores[i], pairs->pairs[i].same};
        double t = best_threshold(s, m);
        int correct = 0, total = 0;
        for (int i = 0; i < pairs->n; i++) {
            if (pairs->pairs[i].fold != k) continue;
            correct += (scores[i] > t) == pairs->pairs[i].same;
            total++;
        }
        res->fold_threshold[k] = t;
        res->fold_accuracy[k] = (double)correct / total;
        res->mean += res->fold_accuracy[k] / pairs->n_folds;
    }
    double ss = 0;
    for (int k = 0; k < pairs->n_folds; k++) ss += pow(res->fold_accuracy[k] - res->mean, 2);
    res->std = sqrt(ss / (pairs->n_folds - 1));
    for (int i = 0; i < pairs->n; i++) s[i] = (scored){scores[i], pairs->pairs[i].same};
    res->auc = roc_auc(s, pairs->n);
    free(s);
    return FU_OK;
}

int fu_lfw_roc(const fu_lfw_pairs *pairs, const float *scores, float *fpr, float *tpr) {
    scored *s = fu_malloc((size_t)pairs->n * sizeof *s);
    if (!s) return -1;
    int n_same = 0;
    for (int i = 0; i < pairs->n; i++) { s[i] = (scored){scores[i], pairs->pairs[i].same}; n_same += s[i].same; }
    int n_diff = pairs->n - n_same;
    qsort(s, (size_t)pairs->n, sizeof *s, by_score);
    int tp = 0, fp = 0;
    fpr[0] = tpr[0] = 0;
    for (int i = pairs->n - 1, k = 1; i >= 0; i--, k++) {   /* lower the threshold past item i */
        tp += s[i].same;
        fp += !s[i].same;
        fpr[k] = n_diff ? (float)fp / n_diff : 0;
        tpr[k] = n_same ? (float)tp / n_same : 0;
    }
    free(s);
    return pairs->n + 1;
}

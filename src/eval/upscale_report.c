/* faceup eval upscale: the tables (JSON and text) and the HTML report (see upscale_eval.h). */
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "eval/upscale_eval.h"
#include "io/fileutil.h"
#include "io/image.h"
#include "eval/text.h"

/* A mean (or, of 0/1 values, a share) that is left out of the JSON when nothing was counted. */
typedef struct tally {
    int n;
    double sum;
} tally;

static void count(tally *t, double v) { t->n++, t->sum += v; }

static void put(cJSON *o, const char *key, const tally *t) {
    if (t->n) cJSON_AddNumberToObject(o, key, t->sum / t->n);
}

static int smiles(float p_happy) { return p_happy > 0.5f; }

static int in_factor(const fu_eu_face *f, const fu_eu_factor *fac) { return !fac->limit || f->rank < fac->limit; }

static const fu_eu_result *result_of(const fu_eu_run *run, int k, int m, int i) {
    const fu_eu_result *r = &run->results[((size_t)k * FU_EU_N_METHODS + m) * run->n_faces + i];
    return r->done ? r : NULL;
}

/* The row of factor k, method m on one set, or NULL when no face of the set has that result. */
static cJSON *method_row(const fu_eu_run *run, int k, int m, int set) {
    tally met = {0}, l2 = {0}, within = {0}, cosine = {0}, agrees = {0}, label = {0}, happy = {0}, smiling = {0}, smile_label = {0},
          success = {0}, seconds = {0};
    for (int i = 0; i < run->n_faces; i++) {
        const fu_eu_face *f = &run->faces[i];
        const fu_eu_result *r = result_of(run, k, m, i);
        if (f->set != set || !r || !in_factor(f, &run->factors[k])) continue;
        int smiling_now = smiles(r->judged.p_happy);
        count(&met, r->met_eps), count(&l2, r->l2), count(&within, r->l2 <= run->eps), count(&seconds, r->seconds);
        count(&cosine, r->judged.cosine), count(&agrees, r->judged.race == run->originals[i].race);
        if (f->race >= 0) count(&label, r->judged.race == f->race);
        count(&happy, r->judged.p_happy), count(&smiling, smiling_now);
        if (f->smiling >= 0) count(&smile_label, smiling_now == f->smiling);
        if (m == FU_EU_SMILING0 || m == FU_EU_SMILING1) count(&success, smiling_now == (m == FU_EU_SMILING1));
    }
    if (!met.n) return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "factor", run->factors[k].factor);
    cJSON_AddStringToObject(o, "method", fu_eu_method_name(m));
    cJSON_AddStringToObject(o, "set", fu_eu_set_name(set));
    cJSON_AddNumberToObject(o, "faces", met.n);
    if (m != FU_EU_BICUBIC) put(o, "search_met_eps", &met);
    put(o, "l2_mean", &l2), put(o, "l2_within_eps", &within), put(o, "identity_cosine", &cosine);
    put(o, "race_agrees_with_original", &agrees), put(o, "race_matches_label", &label);
    put(o, "p_happy_mean", &happy), put(o, "smiling_rate", &smiling), put(o, "smiling_matches_label", &smile_label);
    put(o, "attribute_success", &success);
    if (m != FU_EU_BICUBIC) put(o, "seconds_mean", &seconds);
    return o;
}

/* Per UTKFace class: the share of results whose judged race is the label, and the original's. */
static cJSON *class_row(const fu_eu_run *run, int k, int m, double matches[FU_EU_N_RACES]) {
    tally label[FU_EU_N_RACES] = {0}, agrees[FU_EU_N_RACES] = {0}, aimed[FU_EU_N_RACES] = {0};
    for (int i = 0; i < run->n_faces; i++) {
        const fu_eu_face *f = &run->faces[i];
        const fu_eu_result *r = result_of(run, k, m, i);
        if (f->set != FU_EU_UTK || !r || !in_factor(f, &run->factors[k])) continue;
        count(&label[f->race], r->judged.race == f->race);
        count(&agrees[f->race], r->judged.race == run->originals[i].race);
        if (r->target_race >= 0) count(&aimed[f->race], r->target_race == f->race);
    }
    cJSON *o = cJSON_CreateObject(), *classes = cJSON_CreateObject();
    int any = 0;
    for (int c = 0; c < FU_EU_N_RACES; c++) {
        matches[c] = label[c].n ? label[c].sum / label[c].n : -1;
        if (!label[c].n) continue;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "faces", label[c].n);
        put(x, "matches_label", &label[c]), put(x, "agrees_with_original", &agrees[c]);
        put(x, "target_matches_label", &aimed[c]);   /* race: the thumbnail head's class was the label */
        cJSON_AddItemToObject(classes, fu_eu_race_name(c), x);
        any = 1;
    }
    cJSON_AddNumberToObject(o, "factor", run->factors[k].factor);
    cJSON_AddStringToObject(o, "method", fu_eu_method_name(m));
    cJSON_AddItemToObject(o, "classes", classes);
    if (!any) cJSON_Delete(o);
    return any ? o : NULL;
}

/* Accuracy and per-class recall of one race judge on a set's labelled originals; NULL when none. */
static cJSON *race_judge_json(const fu_eu_run *run, int set, int judge) {
    tally label = {0}, per_class[FU_EU_N_RACES] = {0};
    for (int i = 0; i < run->n_faces; i++) {
        const fu_eu_face *f = &run->faces[i];
        const fu_eu_judged *j = &run->originals[i];
        if (f->set != set || f->race < 0) continue;
        int right = j->race_of[judge] == f->race;
        count(&label, right), count(&per_class[f->race], right);
    }
    if (!label.n) return NULL;
    cJSON *o = cJSON_CreateObject(), *c = cJSON_CreateObject();
    put(o, "accuracy", &label);
    for (int k = 0; k < FU_EU_N_RACES; k++) {
        if (!per_class[k].n) continue;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "faces", per_class[k].n);
        put(x, "recall", &per_class[k]);
        cJSON_AddItemToObject(c, fu_eu_race_name(k), x);
    }
    cJSON_AddItemToObject(o, "per_class", c);
    return o;
}

/* The judges on the originals: how good they are where labels exist (their ceiling). */
static cJSON *originals_json(const fu_eu_run *run) {
    cJSON *o = cJSON_CreateObject();
    for (int set = 0; set < FU_EU_N_SETS; set++) {
        tally happy = {0}, smiling = {0}, gt = {0}, smile_label = {0}, label = {0}, per_class[FU_EU_N_RACES] = {0};
        for (int i = 0; i < run->n_faces; i++) {
            const fu_eu_face *f = &run->faces[i];
            const fu_eu_judged *j = &run->originals[i];
            if (f->set != set) continue;
            count(&happy, j->p_happy), count(&smiling, smiles(j->p_happy));
            if (f->smiling >= 0) count(&gt, f->smiling), count(&smile_label, smiles(j->p_happy) == f->smiling);
            if (f->race >= 0) count(&label, j->race == f->race), count(&per_class[f->race], j->race == f->race);
        }
        if (!happy.n) continue;
        cJSON *s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "faces", happy.n);
        put(s, "p_happy_mean", &happy), put(s, "smiling_rate", &smiling);
        put(s, "smiling_label_rate", &gt), put(s, "smiling_judge_accuracy", &smile_label);
        put(s, "race_judge_accuracy", &label);
        if (label.n) {
            cJSON *c = cJSON_CreateObject(), *all = cJSON_CreateObject();
            for (int k = 0; k < FU_EU_N_RACES; k++)
                if (per_class[k].n) cJSON_AddNumberToObject(c, fu_eu_race_name(k), per_class[k].sum / per_class[k].n);
            cJSON_AddItemToObject(s, "race_judge_accuracy_per_class", c);
            for (int k = 0; k < FU_EU_N_JUDGES; k++) {
                cJSON *r = race_judge_json(run, set, k);
                if (r) cJSON_AddItemToObject(all, fu_eu_judge_name(k), r);
            }
            cJSON_AddItemToObject(s, "race_judges", all);
        }
        cJSON_AddItemToObject(o, fu_eu_set_name(set), s);
    }
    return o;
}

static double row_value(const cJSON *table, int factor, const char *method, const char *set, const char *key) {
    const cJSON *r;
    cJSON_ArrayForEach(r, table) {
        if (cJSON_GetObjectItem(r, "factor")->valueint == factor && !strcmp(cJSON_GetObjectItem(r, "method")->valuestring, method) &&
            !strcmp(cJSON_GetObjectItem(r, "set")->valuestring, set)) {
            const cJSON *v = cJSON_GetObjectItem(r, key);
            return v ? v->valuedouble : -1;
        }
    }
    return -1;
}

/* The targets: (c) beats (b) on judged identity (LFW); (d) beats (b) on race for every
 * UTKFace class (judged race = label). Left out when a method did not run. */
static cJSON *targets_json(const fu_eu_run *run, const cJSON *table, double (*matches)[FU_EU_N_METHODS][FU_EU_N_RACES]) {
    cJSON *out = cJSON_CreateArray();
    for (int k = 0; k < run->n_factors; k++) {
        int f = run->factors[k].factor;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "factor", f);
        double id = row_value(table, f, "identity", "lfw", "identity_cosine"), pulse = row_value(table, f, "pulse", "lfw", "identity_cosine");
        if (id != -1 && pulse != -1)
            cJSON_AddBoolToObject(o, "identity_beats_pulse_on_identity", id > pulse);
        int classes = 0, better = 0;
        for (int c = 0; c < FU_EU_N_RACES; c++) {
            double r = matches[k][FU_EU_RACE][c], p = matches[k][FU_EU_PULSE][c];
            if (r < 0 || p < 0) continue;
            classes++, better += r > p;
        }
        if (classes) {
            cJSON_AddBoolToObject(o, "race_beats_pulse_every_class", better == classes);
            cJSON_AddNumberToObject(o, "race_beats_pulse_classes", better);
            cJSON_AddNumberToObject(o, "race_classes", classes);
        }
        cJSON_AddItemToArray(out, o);
    }
    return out;
}

cJSON *fu_eu_tables(const fu_eu_run *run) {
    cJSON *o = cJSON_CreateObject(), *table = cJSON_CreateArray(), *per_class = cJSON_CreateArray();
    double (*matches)[FU_EU_N_METHODS][FU_EU_N_RACES] = calloc((size_t)run->n_factors, sizeof *matches);
    if (!o || !matches) { cJSON_Delete(o); free(matches); fu_fail(FU_E_INTERNAL, "out of memory"); return NULL; }
    for (int k = 0; k < run->n_factors; k++)
        for (int m = 0; m < FU_EU_N_METHODS; m++) {
            for (int c = 0; c < FU_EU_N_RACES; c++) matches[k][m][c] = -1;
            if (!(run->methods >> m & 1)) continue;
            for (int set = 0; set < FU_EU_N_SETS; set++) {
                cJSON *r = method_row(run, k, m, set);
                if (r) cJSON_AddItemToArray(table, r);
            }
            cJSON *c = class_row(run, k, m, matches[k][m]);
            if (c) cJSON_AddItemToArray(per_class, c);
        }
    cJSON_AddStringToObject(o, "race_judge", fu_eu_judge_name(run->race_judge));
    cJSON_AddItemToObject(o, "table", table);
    cJSON_AddItemToObject(o, "race_per_class", per_class);
    cJSON_AddItemToObject(o, "originals", originals_json(run));
    cJSON_AddItemToObject(o, "targets", targets_json(run, table, matches));
    free(matches);
    return o;
}

/* ---------------------------------------------------------------- text */

static void cell(FILE *f, const cJSON *row, const char *key, int width, int prec) {
    const cJSON *v = cJSON_GetObjectItem(row, key);
    if (v) fprintf(f, " %*.*f", width, prec, v->valuedouble);
    else fprintf(f, " %*s", width, "-");
}

/* Nested objects as "path.to.key: value" lines (readable in the text report and the HTML's <pre>). */
static void print_flat(FILE *f, const cJSON *o, const char *prefix) {
    const cJSON *c;
    cJSON_ArrayForEach(c, o) {
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, cJSON_IsArray(o) ? "" : c->string ? c->string : "", cJSON_IsObject(c) || cJSON_IsArray(c) ? "." : "");
        if (cJSON_IsObject(c) || cJSON_IsArray(c)) print_flat(f, c, path);
        else if (cJSON_IsNumber(c)) fprintf(f, "%s: %.4g\n", path, c->valuedouble);
        else if (cJSON_IsString(c)) fprintf(f, "%s: %s\n", path, c->valuestring);
        else fprintf(f, "%s: %s\n", path, cJSON_IsTrue(c) ? "true" : cJSON_IsFalse(c) ? "false" : "null");
    }
}

void fu_eu_print_tables(const cJSON *tables, FILE *f) {
    fprintf(f, "%-3s %-9s %-8s %5s %7s %8s %6s %7s %9s %10s %7s %7s %11s %6s %6s\n", "x", "method", "set", "faces", "met_eps", "L2",
            "in_eps", "id_cos", "race_orig", "race_label", "p_happy", "smiling", "smile_label", "attr", "sec");
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(tables, "table")) {
        fprintf(f, "%-3d %-9s %-8s %5d", cJSON_GetObjectItem(r, "factor")->valueint, cJSON_GetObjectItem(r, "method")->valuestring,
                cJSON_GetObjectItem(r, "set")->valuestring, cJSON_GetObjectItem(r, "faces")->valueint);
        cell(f, r, "search_met_eps", 7, 2), cell(f, r, "l2_mean", 8, 5), cell(f, r, "l2_within_eps", 6, 2);
        cell(f, r, "identity_cosine", 7, 4), cell(f, r, "race_agrees_with_original", 9, 2), cell(f, r, "race_matches_label", 10, 2);
        cell(f, r, "p_happy_mean", 7, 3), cell(f, r, "smiling_rate", 7, 2), cell(f, r, "smiling_matches_label", 11, 2);
        cell(f, r, "attribute_success", 6, 2), cell(f, r, "seconds_mean", 6, 1);
        fputc('\n', f);
    }
    const cJSON *judge = cJSON_GetObjectItem(tables, "race_judge");
    fprintf(f, "\nUTKFace race judged (%s) = label, per class (faces):\n", cJSON_IsString(judge) ? judge->valuestring : "?");
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(tables, "race_per_class")) {
        fprintf(f, "x%-2d %-9s", cJSON_GetObjectItem(r, "factor")->valueint, cJSON_GetObjectItem(r, "method")->valuestring);
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(r, "classes"))
            fprintf(f, "  %s %.2f (%d)", c->string, cJSON_GetObjectItem(c, "matches_label")->valuedouble, cJSON_GetObjectItem(c, "faces")->valueint);
        fputc('\n', f);
    }
    fprintf(f, "\nmet_eps: share of searches that met eps; in_eps: share of results whose L2 is within eps; id_cos: faceres\n"
               "cosine to the original; race_orig: judged race equals the original's; race_label: equals the UTKFace\n"
               "label; smiling: judged P(happy) > 0.5; smile_label: that matches the CelebA label; attr: attribute\n"
               "goals met; sec: seconds per search.\n\njudges on the originals:\n");
    print_flat(f, cJSON_GetObjectItem(tables, "originals"), "  ");
    fprintf(f, "targets:\n");
    print_flat(f, cJSON_GetObjectItem(tables, "targets"), "  ");
}

/* ---------------------------------------------------------------- HTML */

static void html_image(FILE *f, const char *src, const char *caption) {
    fprintf(f, "<td><img src=\"%s\" width=\"96\" height=\"96\" alt=\"\"><br>%s</td>", src, caption);
}

static void html_caption(const fu_eu_result *r, const fu_eu_face *f, char *buf, size_t n) {
    if (!r) { snprintf(buf, n, "not run"); return; }
    snprintf(buf, n, "%sL2 %.4f<br>cos %.3f<br>%s%s, happy %.2f", r->met_eps ? "" : "<b>no eps</b> ", (double)r->l2,
             (double)r->judged.cosine, fu_eu_race_name(r->judged.race), f->race >= 0 && r->judged.race == f->race ? " &#10003;" : "",
             (double)r->judged.p_happy);
}

static void html_grid(FILE *f, const fu_eu_run *run, int k, int set) {
    int fac = run->factors[k].factor, header = 0;
    for (int i = 0; i < run->n_faces; i++) {
        const fu_eu_face *face = &run->faces[i];
        if (face->set != set || !in_factor(face, &run->factors[k])) continue;
        if (!header) {
            fprintf(f, "<h3>factor %d, %s</h3>\n<table class=\"grid\"><tr><th>face</th><th>thumbnail</th>", fac, fu_eu_set_name(set));
            for (int m = 0; m < FU_EU_N_METHODS; m++)
                if (run->methods >> m & 1) fprintf(f, "<th>%s</th>", fu_eu_method_name(m));
            fprintf(f, "<th>original</th>%s</tr>\n", set == FU_EU_LFW ? "<th>reference</th>" : "");
            header = 1;
        }
        char src[256], cap[256];
        fprintf(f, "<tr><td>%s%s%s</td>", face->id, face->race >= 0 ? "<br>" : "", face->race >= 0 ? fu_eu_race_name(face->race) : "");
        snprintf(src, sizeof src, "faces/%s/thumb%d.png", face->id, fac);
        html_image(f, src, "");
        for (int m = 0; m < FU_EU_N_METHODS; m++) {
            if (!(run->methods >> m & 1)) continue;
            const fu_eu_result *r = result_of(run, k, m, i);
            html_caption(r, face, cap, sizeof cap);
            snprintf(src, sizeof src, "x%d/%s/%s.png", fac, fu_eu_method_name(m), face->id);
            if (r) html_image(f, src, cap);
            else fprintf(f, "<td>%s</td>", cap);
        }
        const fu_eu_judged *o = &run->originals[i];
        snprintf(cap, sizeof cap, "%s, happy %.2f%s", fu_eu_race_name(o->race), (double)o->p_happy,
                 face->smiling >= 0 ? (face->smiling ? "<br>label: smiling" : "<br>label: not smiling") : "");
        snprintf(src, sizeof src, "faces/%s/hr.png", face->id);
        html_image(f, src, cap);
        snprintf(src, sizeof src, "faces/%s/ref.png", face->id);
        if (set == FU_EU_LFW) html_image(f, src, "");
        fprintf(f, "</tr>\n");
    }
    if (header) fprintf(f, "</table>\n");
}

int fu_eu_write_html(const fu_eu_run *run, const cJSON *tables, const char *path) {
    fu_atomic_file af;
    int rc = fu_atomic_open(&af, path);
    if (rc != FU_OK) return rc;
    FILE *f = af.f;
    fprintf(f, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>faceup eval upscale</title>\n<style>"
               "body{font:13px sans-serif} td{vertical-align:top;text-align:center;padding:2px} img{image-rendering:pixelated}"
               "</style></head><body>\n<h1>faceup eval upscale</h1>\n"
               "<p>Judges not used by the search: faceres cosine to the original (cos), %s race (&#10003;: UTKFace label), "
               "emotion P(happy). L2: the result's downscale against the thumbnail (eps %g).</p>\n<pre>",
            fu_eu_judge_name(run->race_judge), (double)run->eps);
    fu_eu_print_tables(tables, f);
    fprintf(f, "</pre>\n");
    for (int k = 0; k < run->n_factors; k++)
        for (int set = 0; set < FU_EU_N_SETS; set++) html_grid(f, run, k, set);
    fprintf(f, "</body></html>\n");
    if (ferror(f)) { fu_atomic_abort(&af); return fu_fail(FU_E_INPUT, "%s: write failed", path); }
    return fu_atomic_commit(&af);
}

/* ---------------------------------------------------------------- sheet */

#define SHEET_TEXT 2          /* font scale of the labels */
#define SHEET_HEADER 16       /* pixels of the column-name row */

/* Draws the image at path into sheet at (x, y), resized to cell x cell by nearest neighbour
 * (thumbnails stay blocky, as they are). Absent or unreadable images leave the cell grey. */
static void blit_file(fu_tensor *sheet, const char *path, int x, int y, int cell) {
    fu_tensor *img = fu_image_load(path);
    if (!img) { fu_clear_error(); return; }
    int64_t h = img->shape[2], w = img->shape[3], H = sheet->shape[2], W = sheet->shape[3];
    for (int c = 0; c < 3; c++)
        for (int dy = 0; dy < cell; dy++)
            for (int dx = 0; dx < cell; dx++)
                sheet->data[((int64_t)c * H + y + dy) * W + x + dx] = img->data[((int64_t)c * h + dy * h / cell) * w + dx * w / cell];
    fu_tensor_free(img);
}

static void result_caption(const fu_eu_result *r, const fu_eu_face *f, char *buf, size_t n) {
    if (f->set == FU_EU_UTK) snprintf(buf, n, "%s%s", fu_eu_race_name(r->judged.race), r->judged.race == f->race ? " ok" : "");
    else if (f->set == FU_EU_LFW) snprintf(buf, n, "cos %.2f", (double)r->judged.cosine);
    else snprintf(buf, n, "happy %.2f", (double)r->judged.p_happy);
}

/* A caption on a cell's bottom line, cut to the cell; "no eps" on the line above it. */
static void draw_caption(fu_tensor *sheet, int x, int y, int cell, const char *caption, int met_eps) {
    int pad = SHEET_TEXT, line = 7 * SHEET_TEXT;
    fu_draw_text_cut(sheet, x + pad, y + cell - 6 * SHEET_TEXT, SHEET_TEXT, cell - 2 * pad, caption);
    if (!met_eps) fu_draw_text(sheet, x + pad, y + cell - 6 * SHEET_TEXT - line, SHEET_TEXT, "no eps");
}

/* The sheet's rows: indices of the faces shown for factor k, in run order. */
static int sheet_rows(const fu_eu_run *run, int k, int per_group, int *rows) {
    int n = 0;
    for (int i = 0; i < run->n_faces; i++)
        if (run->faces[i].rank < per_group && in_factor(&run->faces[i], &run->factors[k])) rows[n++] = i;
    return n;
}

static void sheet_row(fu_tensor *sheet, const fu_eu_run *run, const char *dir, int k, int i, int y, int cell) {
    const fu_eu_face *f = &run->faces[i];
    int fac = run->factors[k].factor, x = 0, pad = SHEET_TEXT;
    char path[FU_EU_PATH + 160], label[64];
    snprintf(path, sizeof path, "%s/faces/%s/thumb%d.png", dir, f->id, fac);
    blit_file(sheet, path, x, y, cell);
    snprintf(label, sizeof label, "x%d %s", fac, f->set == FU_EU_UTK ? fu_eu_race_name(f->race) : fu_eu_set_name(f->set));
    fu_draw_text(sheet, x + pad, y + pad, SHEET_TEXT, label);
    for (int m = 0; m < FU_EU_N_METHODS; m++) {
        if (!(run->methods >> m & 1)) continue;
        x += cell;
        const fu_eu_result *r = result_of(run, k, m, i);
        if (!r) continue;
        snprintf(path, sizeof path, "%s/x%d/%s/%s.png", dir, fac, fu_eu_method_name(m), f->id);
        blit_file(sheet, path, x, y, cell);
        result_caption(r, f, label, sizeof label);
        draw_caption(sheet, x, y, cell, label, r->met_eps);
    }
    x += cell;
    snprintf(path, sizeof path, "%s/faces/%s/hr.png", dir, f->id);
    blit_file(sheet, path, x, y, cell);
    if (f->smiling >= 0) draw_caption(sheet, x, y, cell, f->smiling ? "smiling" : "not smiling", 1);
    if (f->set != FU_EU_LFW) return;
    snprintf(path, sizeof path, "%s/faces/%s/ref.png", dir, f->id);
    blit_file(sheet, path, x + cell, y, cell);
}

static void sheet_header(fu_tensor *sheet, const fu_eu_run *run, int cell, int has_reference) {
    int x = 0, pad = SHEET_TEXT;
    fu_draw_text(sheet, x + pad, pad, SHEET_TEXT, "thumbnail");
    for (int m = 0; m < FU_EU_N_METHODS; m++)
        if (run->methods >> m & 1) fu_draw_text(sheet, (x += cell) + pad, pad, SHEET_TEXT, fu_eu_method_name(m));
    fu_draw_text(sheet, (x += cell) + pad, pad, SHEET_TEXT, "original");
    if (has_reference) fu_draw_text(sheet, (x += cell) + pad, pad, SHEET_TEXT, "reference");
}

int fu_eu_write_sheet(const fu_eu_run *run, const char *out_dir, int per_group, int cell, const char *path) {
    int *rows = malloc(sizeof(int) * (size_t)(run->n_faces ? run->n_faces : 1)), n_rows = 0, has_reference = 0;
    if (!rows) return fu_fail(FU_E_INTERNAL, "out of memory");
    for (int k = 0; k < run->n_factors; k++) {
        int n = sheet_rows(run, k, per_group, rows);
        for (int r = 0; r < n; r++) has_reference |= run->faces[rows[r]].set == FU_EU_LFW;
        n_rows += n;
    }
    int n_cols = 2 + has_reference;   /* thumbnail, original, reference */
    for (int m = 0; m < FU_EU_N_METHODS; m++) n_cols += run->methods >> m & 1;
    fu_tensor *sheet = n_rows ? fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)(SHEET_HEADER + n_rows * cell), (int64_t)(n_cols * cell)) : NULL;
    int rc = n_rows == 0 ? FU_OK : sheet ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    if (sheet) {
        for (int64_t j = 0; j < sheet->numel; j++) sheet->data[j] = 0.5f;
        sheet_header(sheet, run, cell, has_reference);
        int y = SHEET_HEADER;
        for (int k = 0; k < run->n_factors; k++) {
            int n = sheet_rows(run, k, per_group, rows);
            for (int r = 0; r < n; r++, y += cell) sheet_row(sheet, run, out_dir, k, rows[r], y, cell);
        }
        rc = fu_image_save_png(path, sheet);
    }
    fu_tensor_free(sheet);
    free(rows);
    return rc;
}

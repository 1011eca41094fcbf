/* `faceup eval upscale`: the paper's experiments on held-out faces (data, methods, metrics,
 * report). The command (src/cli/cmd_eval_upscale.c) runs the searches and the judges; this
 * module picks the faces, names the methods, and turns per-result records into the tables.
 *
 * Faces (none of them trained on by faceup's generator or heads, src/data/faces.h):
 *   lfw      LFW same-person pairs of pairs.txt, taken round robin over the 10 folds (fold 0's
 *            first pair, fold 1's first pair, ...): photo i is the high-resolution face, photo j
 *            of the same person the identity reference.
 *   utkface  UTKFace val files (every 20th in sorted order, index % 20 == 19), in that order,
 *            the first N of each race class (white, black, asian, indian, other).
 *   celeba   CelebA val files (009001-009500), in order: they carry CelebA's Smiling label, the
 *            ground truth for the attribute experiment.
 * A candidate without a usable face (the generator's framing finds none; the LFW reference has
 * none) is skipped and the next one taken, so the counts are met while candidates last.
 *
 * Methods, per thumbnail (PULSE's bicubic downscale of the 64x64 original by the factor):
 *   bicubic   the thumbnail upscaled with a bicubic resize (no search)
 *   pulse     search with 100*L2+0.05*GEOCROSS only (plain PULSE)
 *   identity  + 5*IDENTITY_SCORE towards the reference photo (LFW only: the others have none)
 *   race      + 1*RACE_IS_k, k = the thumbnail race head's class (faceup upscale --race keep)
 *   smiling0  + 1*ATTR_Smiling_IS_0
 *   smiling1  + 1*ATTR_Smiling_IS_1
 *
 * Judges (networks the search never uses), on the 64x64 image in the generator's FFHQ frame:
 *   identity  faceres descriptor (human-models) of the whole image resized to 224; cosine
 *             between the result and the original
 *   race      one of two judges (--race-judge), compared with the original's class and with
 *             UTKFace's label; both are recorded for every image:
 *               faceres  faceup's race judge (face/race_judge.h): an MLP on that same faceres
 *                        descriptor, trained on UTKFace train faces of the generator's pack
 *                        (the default: on the 440 UTKFace val faces, balanced accuracy
 *                        70.9% against gear's 46.8%, higher recall on every class but White)
 *               gear     human-models' gear on the box of the frame where UTKFace's chips sit
 *                        (what it was trained on), resized to 198: on the originals that box
 *                        beat the whole frame (48% vs 42% of 98 UTKFace val faces)
 *   smiling   emotion's P(happy) on the whole image; smiling when > 0.5 */
#ifndef FU_EVAL_UPSCALE_EVAL_H
#define FU_EVAL_UPSCALE_EVAL_H
#include <cjson/cJSON.h>
#include <stdio.h>

enum { FU_EU_LFW, FU_EU_UTK, FU_EU_CELEBA, FU_EU_N_SETS };
enum { FU_EU_BICUBIC, FU_EU_PULSE, FU_EU_IDENTITY, FU_EU_RACE, FU_EU_SMILING0, FU_EU_SMILING1, FU_EU_N_METHODS };
#define FU_EU_N_RACES 5
#define FU_EU_MAX_FACTORS 6
#define FU_EU_PATH 1024

const char *fu_eu_set_name(int set);        /* "lfw", "utkface", "celeba" */
const char *fu_eu_method_name(int method);  /* "bicubic", ... */
const char *fu_eu_race_name(int race);      /* UTKFace's classes: "white", ... */

/* The race judges (see above). */
enum { FU_EU_JUDGE_FACERES, FU_EU_JUDGE_GEAR, FU_EU_N_JUDGES };
const char *fu_eu_judge_name(int judge);     /* "faceres", "gear" */
int fu_eu_judge_parse(const char *name);     /* -1 when unknown */

/* "pulse,identity" -> bit mask of methods. FU_E_INPUT naming an unknown method. */
int fu_eu_methods_parse(const char *list, int *mask);

/* "4,8:10": factors, each optionally limited to the first N faces of every set (UTKFace: of
 * every class); limit 0 = no limit. Factors must be powers of two 2..64 (the generator's size
 * is checked by the caller). FU_E_INPUT on anything else. */
typedef struct fu_eu_factor {
    int factor, limit;
} fu_eu_factor;
int fu_eu_factors_parse(const char *list, fu_eu_factor *out, int *n);

typedef struct fu_eu_face {
    char id[48];                     /* "lfw-007", "utk-black-003", "celeba-009012" */
    int set, rank;                   /* rank: position among its set's (UTKFace: class's) faces */
    char photo[FU_EU_PATH], reference[FU_EU_PATH];   /* reference: LFW only, else "" */
    int race;                        /* UTKFace's label 0..4, else -1 */
    int smiling;                     /* CelebA's Smiling label 0/1, else -1 */
} fu_eu_face;

/* Every candidate of the three sets in the order above (ranks unset), for the sets with a
 * non-zero count. Checks that data_dir holds what those sets need. FU_OK or FU_E_INPUT. */
int fu_eu_candidates(const char *data_dir, const int count[FU_EU_N_SETS], fu_eu_face **out, int *n);

/* What a judge says about one image. */
typedef struct fu_eu_judged {
    float cosine;                    /* faceres, to the original (1 for the original itself) */
    float race_probs[FU_EU_N_JUDGES][FU_EU_N_RACES];
    int race_of[FU_EU_N_JUDGES];     /* each race judge's class; -1 when that judge did not run */
    char faceres_judge[33];          /* content key of the faceres race judge file behind race_of[FACERES] ("": unknown) */
    int race;                        /* the class of the judge the tables use (fu_eu_use_judge) */
    float p_happy;                   /* emotion */
} fu_eu_judged;

/* Sets race from judge's class (the argmax of its probabilities). */
void fu_eu_use_judge(fu_eu_judged *j, int judge);

/* One (face, factor, method) result. */
typedef struct fu_eu_result {
    int done;
    int met_eps;                     /* the search's own verdict (bicubic: l2 <= eps) */
    float l2;                        /* MSE of the saved PNG's downscale against the thumbnail */
    double seconds;                  /* search time */
    int target_race;                 /* race: the class the search aimed at; else -1 */
    fu_eu_judged judged;
} fu_eu_result;

cJSON *fu_eu_result_json(const fu_eu_result *r);
/* Reads a record written by fu_eu_result_json (faceres_race may be absent, from records of
 * before the faceres judge: race_of[FACERES] = -1; so may the judge file's key, read as "").
 * FU_OK or FU_E_INPUT (label names the file). */
int fu_eu_result_from_json(const cJSON *j, fu_eu_result *r, const char *label);

/* Everything the tables need. results[(k * FU_EU_N_METHODS + m) * n_faces + i] is face i's
 * result for factor k and method m (done = 0 when not run); originals[i] the judges on face i's
 * original. */
typedef struct fu_eu_run {
    const fu_eu_face *faces;
    int n_faces;
    const fu_eu_factor *factors;
    int n_factors, methods;          /* methods: bit mask */
    int race_judge;                  /* FU_EU_JUDGE_*: the judge behind every race figure */
    float eps;
    const fu_eu_judged *originals;
    const fu_eu_result *results;
} fu_eu_run;

/* The tables (a field is left out where nothing was counted):
 *   table: one row per factor x method x set: faces; search_met_eps (share the search accepted:
 *     L2 <= eps and, with race/attribute terms, those <= 0.1); l2_mean, l2_within_eps (the saved
 *     result's downscale against the thumbnail); identity_cosine (faceres, to the original);
 *     race_agrees_with_original, race_matches_label (the chosen race judge; label: UTKFace); p_happy_mean,
 *     smiling_rate (emotion), smiling_matches_label (CelebA's label); attribute_success
 *     (smiling0/1: the judged smile is the target); seconds_mean (search time).
 *   race_per_class: per factor x method, per UTKFace class: faces, matches_label,
 *     agrees_with_original, and for race target_matches_label (the thumbnail head aimed right).
 *   originals: per set, the judges on the originals (their accuracy where labels exist; race:
 *     the chosen judge, and race_judges: every race judge's accuracy and per-class recall).
 *   race_judge: the chosen judge's name.
 *   targets: per factor, identity_beats_pulse_on_identity (LFW) and
 *     race_beats_pulse_every_class (UTKFace, matches_label), where both methods ran.
 * NULL with a message when out of memory. */
cJSON *fu_eu_tables(const fu_eu_run *run);
/* The tables as fixed-width text (the command's output without --json). */
void fu_eu_print_tables(const cJSON *tables, FILE *f);
/* OUT/report.html: the summary table and, per factor and set, a grid of images with relative
 * paths (faces/ID/thumbF.png, xF/METHOD/ID.png, faces/ID/hr.png, faces/ID/ref.png). */
int fu_eu_write_html(const fu_eu_run *run, const cJSON *tables, const char *path);
/* A labelled picture of the run, out_dir/sheet.png style: per factor, the first per_group faces
 * of each set (UTKFace: of each class), one row each: thumbnail | each method's result |
 * original | reference (LFW). Images are read from out_dir (skipped results stay grey) and drawn
 * at cell x cell pixels; under each result the judge that matters for its set (UTKFace: judged
 * race, "ok" when it is the label; LFW: identity cosine; CelebA: P(happy)). PNG, atomic. */
int fu_eu_write_sheet(const fu_eu_run *run, const char *out_dir, int per_group, int cell, const char *path);

#endif

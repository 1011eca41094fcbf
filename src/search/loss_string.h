/* Loss strings of the PULSE-style search: "W*TERM+W*TERM...", e.g.
 * "100*L2+0.05*GEOCROSS+5*IDENTITY_SCORE" (the format of PULSE's and IdentityUpscaling's
 * --loss_str).
 *
 * Grammar (strict: no spaces, no signs, every term weighted, each term at most once):
 *   string := term ('+' term)*
 *   term   := weight '*' NAME
 *   weight := digits ['.' digits*] [('e'|'E') ['+'|'-'] digits]  |  '.' digits [exponent]
 *             a finite value in [0, FU_LOSS_MAX_WEIGHT]
 *   NAME   := L2 | L1 | GEOCROSS | IDENTITY_SCORE | L2_IDENTITY
 *           | RACE_IS_k        (k = 0 .. FU_LOSS_MAX_RACE-1: a class index of the race head)
 *           | ATTR_k_IS_v      (k = CelebA attribute index 0..39 or its name, e.g. Smiling;
 *                               v = 0 or 1)
 * Terms (what search.c computes for them):
 *   L2        mean squared error between the bicubic-downscaled image and the thumbnail,
 *             clamped below at eps (PULSE)
 *   L1        10 x mean absolute error, clamped below at eps (PULSE's L1 carries the 10)
 *   GEOCROSS  geodesic cross loss between the per-layer latents (PULSE)
 *   IDENTITY_SCORE, L2_IDENTITY, RACE_IS_k, ATTR_k_IS_v: face-network terms, computed by guides
 *             (see search.h).
 * Limits: at most FU_LOSS_MAX_LEN characters and FU_LOSS_MAX_TERMS terms. */
#ifndef FU_SEARCH_LOSS_STRING_H
#define FU_SEARCH_LOSS_STRING_H
#include <stddef.h>

#define FU_LOSS_MAX_LEN 512
#define FU_LOSS_MAX_TERMS 16
#define FU_LOSS_MAX_WEIGHT 1e6
#define FU_LOSS_MAX_RACE 7          /* FairFace's 7 classes; UTKFace's 5 fit inside */
#define FU_CELEBA_N_ATTRS 40

typedef enum {
    FU_TERM_L2,
    FU_TERM_L1,
    FU_TERM_GEOCROSS,
    FU_TERM_IDENTITY_SCORE,
    FU_TERM_L2_IDENTITY,
    FU_TERM_RACE,                   /* index = class */
    FU_TERM_ATTR,                   /* index = CelebA attribute, value = 0 or 1 */
} fu_loss_term_kind;

typedef struct fu_loss_term {
    fu_loss_term_kind kind;
    float weight;
    int index, value;
} fu_loss_term;

typedef struct fu_loss_spec {
    int n_terms;
    fu_loss_term terms[FU_LOSS_MAX_TERMS];
} fu_loss_spec;

/* Parses s into *out. FU_OK, or FU_E_INPUT with a one-line message naming the 1-based
 * character position and the problem ("loss string: at character 7: unknown term 'L3' ..."). */
int fu_loss_parse(const char *s, fu_loss_spec *out);
/* Canonical text of a term ("L2", "RACE_IS_3", "ATTR_31_IS_1") into buf; returns buf. */
const char *fu_loss_term_name(const fu_loss_term *t, char *buf, size_t n);
/* Canonical text of a whole spec ("100*L2+0.05*GEOCROSS"); returns buf. */
const char *fu_loss_spec_string(const fu_loss_spec *s, char *buf, size_t n);
/* Index of a term kind in the spec, or -1. */
int fu_loss_find(const fu_loss_spec *s, fu_loss_term_kind kind);
/* Appends a term (used by the CLI's --identity, --race, --attr flags); FU_E_INPUT when the spec
 * is full or already has that term. */
int fu_loss_add(fu_loss_spec *s, fu_loss_term term);

/* CelebA's attribute names in list_attr_celeba.txt order ("5_o_Clock_Shadow" .. "Young"). */
const char *fu_celeba_attr_name(int index);         /* NULL out of range */
int fu_celeba_attr_index(const char *name, size_t len);   /* -1 when unknown */

#endif

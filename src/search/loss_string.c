/* Loss-string parser: a hand-written scanner over the grammar in loss_string.h. Every error
 * names the 1-based character where the problem starts. */
#include "search/loss_string.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

static const char *const celeba_attrs[FU_CELEBA_N_ATTRS] = {
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
};

const char *fu_celeba_attr_name(int index) {
    return index >= 0 && index < FU_CELEBA_N_ATTRS ? celeba_attrs[index] : NULL;
}

int fu_celeba_attr_index(const char *name, size_t len) {
    for (int i = 0; i < FU_CELEBA_N_ATTRS; i++)
        if (strlen(celeba_attrs[i]) == len && !strncmp(celeba_attrs[i], name, len)) return i;
    return -1;
}

#define KNOWN_TERMS "L2, L1, GEOCROSS, IDENTITY_SCORE, L2_IDENTITY, RACE_IS_k, ATTR_k_IS_v"

/* Error at 0-based offset pos; quotes at most 24 characters of the offending text. */
static int parse_error(size_t pos, const char *what, const char *text, size_t len) {
    if (text)
        return fu_fail(FU_E_INPUT, "loss string: at character %zu: %s '%.*s'", pos + 1, what, (int)(len > 24 ? 24 : len), text);
    return fu_fail(FU_E_INPUT, "loss string: at character %zu: %s", pos + 1, what);
}

/* A small decimal integer spelled with digits only (no sign, at most 3 digits); -1 otherwise. */
static int small_int(const char *s, size_t len) {
    if (len == 0 || len > 3) return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Length of the weight at s per the grammar, 0 when s does not start with one. */
static size_t scan_weight(const char *s) {
    size_t i = 0, digits = 0;
    while (isdigit((unsigned char)s[i])) i++, digits++;
    if (s[i] == '.') {
        i++;
        while (isdigit((unsigned char)s[i])) i++, digits++;
    }
    if (!digits) return 0;
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-') j++;
        if (!isdigit((unsigned char)s[j])) return 0;
        while (isdigit((unsigned char)s[j])) j++;
        i = j;
    }
    return i;
}

/* RACE_IS_k and ATTR_k_IS_v (k an index or a CelebA name); FU_OK or an error at pos. */
static int parse_indexed(const char *name, size_t len, size_t pos, fu_loss_term *t) {
    if (len > 8 && !strncmp(name, "RACE_IS_", 8)) {
        int k = small_int(name + 8, len - 8);
        if (k < 0 || k >= FU_LOSS_MAX_RACE) return parse_error(pos + 8, "race class must be an integer 0..6, got", name + 8, len - 8);
        t->kind = FU_TERM_RACE;
        t->index = k;
        return FU_OK;
    }
    /* ATTR_<k>_IS_<v>: the last "_IS_" splits, since attribute names contain underscores. */
    if (len < 5 || strncmp(name, "ATTR_", 5))
        return fu_fail(FU_E_INPUT, "loss string: at character %zu: unknown term '%.*s' (known: " KNOWN_TERMS ")", pos + 1, (int)(len > 24 ? 24 : len), name);
    const char *is = NULL;
    for (const char *p = name + 5; p + 4 <= name + len; p++)
        if (!strncmp(p, "_IS_", 4)) is = p;
    if (!is) return parse_error(pos, "attribute term must read ATTR_k_IS_v, got", name, len);
    const char *key = name + 5, *val = is + 4;
    size_t key_len = (size_t)(is - key), val_len = (size_t)(name + len - val);
    int k = isdigit((unsigned char)key[0]) && small_int(key, key_len) >= 0 ? small_int(key, key_len) : fu_celeba_attr_index(key, key_len);
    if (k < 0 || k >= FU_CELEBA_N_ATTRS) return parse_error(pos + 5, "unknown CelebA attribute (0..39 or a name like Smiling)", key, key_len);
    if (val_len != 1 || (val[0] != '0' && val[0] != '1')) return parse_error((size_t)(val - name) + pos, "attribute value must be 0 or 1, got", val, val_len);
    t->kind = FU_TERM_ATTR;
    t->index = k;
    t->value = val[0] - '0';
    return FU_OK;
}

static int parse_name(const char *name, size_t len, size_t pos, fu_loss_term *t) {
    static const struct { const char *name; fu_loss_term_kind kind; } plain[] = {
        {"L2", FU_TERM_L2}, {"L1", FU_TERM_L1}, {"GEOCROSS", FU_TERM_GEOCROSS},
        {"IDENTITY_SCORE", FU_TERM_IDENTITY_SCORE}, {"L2_IDENTITY", FU_TERM_L2_IDENTITY},
    };
    t->index = t->value = 0;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (strlen(plain[i].name) == len && !strncmp(plain[i].name, name, len)) { t->kind = plain[i].kind; return FU_OK; }
    return parse_indexed(name, len, pos, t);
}

static int same_term(const fu_loss_term *a, const fu_loss_term *b) {
    return a->kind == b->kind && a->index == b->index && (a->kind != FU_TERM_ATTR || a->value == b->value);
}

int fu_loss_add(fu_loss_spec *s, fu_loss_term term) {
    char name[48];
    for (int i = 0; i < s->n_terms; i++)
        if (same_term(&s->terms[i], &term)) return fu_fail(FU_E_INPUT, "loss string: term %s given twice", fu_loss_term_name(&term, name, sizeof name));
    if (s->n_terms == FU_LOSS_MAX_TERMS) return fu_fail(FU_E_INPUT, "loss string: more than %d terms", FU_LOSS_MAX_TERMS);
    s->terms[s->n_terms++] = term;
    return FU_OK;
}

/* One "W*NAME" at s[*pos..]; advances *pos past it. */
static int parse_term(const char *s, size_t *pos, fu_loss_spec *out) {
    const char *w = s + *pos;
    size_t wlen = scan_weight(w);
    if (!wlen) return parse_error(*pos, "expected a weight (a number like 100 or 0.05) at", w, strcspn(w, "+"));
    if (w[wlen] != '*') return parse_error(*pos + wlen, "expected '*' after the weight, got", w + wlen, strcspn(w + wlen, "+"));
    double weight = strtod(w, NULL);  /* the span is a validated decimal, so strtod stops at '*' */
    if (!(weight <= FU_LOSS_MAX_WEIGHT)) return parse_error(*pos, "weight larger than 1e6:", w, wlen);
    size_t name_pos = *pos + wlen + 1, name_len = strcspn(s + name_pos, "+");
    if (!name_len) return parse_error(name_pos, "expected a term name after '*'", NULL, 0);
    fu_loss_term t = {.weight = (float)weight};
    if (parse_name(s + name_pos, name_len, name_pos, &t) != FU_OK) return FU_E_INPUT;
    for (int i = 0; i < out->n_terms; i++)
        if (same_term(&out->terms[i], &t)) return parse_error(name_pos, "term given twice:", s + name_pos, name_len);
    if (out->n_terms == FU_LOSS_MAX_TERMS) return parse_error(*pos, "too many terms (at most 16)", NULL, 0);
    out->terms[out->n_terms++] = t;
    *pos = name_pos + name_len;
    return FU_OK;
}

int fu_loss_parse(const char *s, fu_loss_spec *out) {
    memset(out, 0, sizeof *out);
    if (!s || !*s) return fu_fail(FU_E_INPUT, "loss string: empty (expected e.g. 100*L2+0.05*GEOCROSS)");
    size_t len = strnlen(s, FU_LOSS_MAX_LEN + 1);
    if (len > FU_LOSS_MAX_LEN) return fu_fail(FU_E_INPUT, "loss string: longer than %d characters", FU_LOSS_MAX_LEN);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr("_.*+-", c))
            return isprint(c) ? parse_error(i, "unexpected character", s + i, 1)
                              : fu_fail(FU_E_INPUT, "loss string: at character %zu: unexpected byte 0x%02x", i + 1, c);
    }
    size_t pos = 0;
    for (;;) {
        if (parse_term(s, &pos, out) != FU_OK) { out->n_terms = 0; return FU_E_INPUT; }
        if (pos == len) return FU_OK;
        pos++;  /* the '+' */
        if (pos == len) { out->n_terms = 0; return parse_error(pos - 1, "'+' at the end", NULL, 0); }
    }
}

const char *fu_loss_term_name(const fu_loss_term *t, char *buf, size_t n) {
    static const char *const names[] = {"L2", "L1", "GEOCROSS", "IDENTITY_SCORE", "L2_IDENTITY"};
    if (t->kind == FU_TERM_RACE) snprintf(buf, n, "RACE_IS_%d", t->index);
    else if (t->kind == FU_TERM_ATTR) snprintf(buf, n, "ATTR_%d_IS_%d", t->index, t->value);
    else snprintf(buf, n, "%s", names[t->kind]);
    return buf;
}

const char *fu_loss_spec_string(const fu_loss_spec *s, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < s->n_terms && used < n; i++) {
        char name[48];
        int k = snprintf(buf + used, n - used, "%s%g*%s", i ? "+" : "", (double)s->terms[i].weight,
                         fu_loss_term_name(&s->terms[i], name, sizeof name));
        if (k < 0) break;
        used += (size_t)k;
    }
    return buf;
}

int fu_loss_find(const fu_loss_spec *s, fu_loss_term_kind kind) {
    for (int i = 0; i < s->n_terms; i++) if (s->terms[i].kind == kind) return i;
    return -1;
}

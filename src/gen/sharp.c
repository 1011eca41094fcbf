#include "sharp.h"
#include "core/error.h"
#include "core/ops.h"
#include "faceup.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The VAE's weights must be finite too: its own reader leaves that to the caller. */
static int check_finite(const fu_vae *m, const char *label) {
    for (int i = 0; i < m->n_params; i++)
        for (int64_t j = 0; j < m->params[i]->numel; j++)
            if (!isfinite(m->params[i]->data[j]))
                return fu_fail(FU_E_INPUT, "%s: tensor %s has a non-finite value", label, m->params[i]->name);
    return FU_OK;
}

int fu_sharp_from_safetensors(const fu_safetensors *st, int allow_extra, fu_sharp *out) {
    *out = (fu_sharp){0};
    if (!fu_sr_present(st)) return fu_fail(FU_E_INPUT, "%s: not a sharp generator (no sr.head.weight)", st->label);
    if (!fu_st_find(st, "dec.fc.weight"))
        return fu_fail(FU_E_INPUT, "%s: a sharpening stage without its VAE (dec.fc.weight missing)", st->label);
    int rc = fu_vae_from_safetensors(st, 1, &out->vae);
    if (rc == FU_OK) rc = check_finite(out->vae, st->label);
    if (rc == FU_OK) rc = fu_sr_from_safetensors(st, &out->sr);
    int expected = rc == FU_OK ? out->vae->n_params + 2 * (out->vae->prior_mean != NULL) + out->sr->n_params : 0;
    if (rc == FU_OK && !allow_extra && st->n_entries != expected)
        rc = fu_fail(FU_E_INPUT, "%s: %d tensors, a sharp generator of this config has %d", st->label, st->n_entries, expected);
    if (rc != FU_OK) fu_sharp_release(out);
    return rc;
}

int fu_sharp_load(const char *path, fu_sharp *out) {
    *out = (fu_sharp){0};
    fu_safetensors *st = fu_st_open(path);
    if (!st) return fu_last_code();
    int rc = fu_sharp_from_safetensors(st, 0, out);
    fu_st_free(st);
    return rc;
}

int fu_sharp_save(const fu_vae *vae, const fu_sr *sr, const char *path) {
    fu_st_item items[FU_VAE_MAX_PARAMS + 2 + FU_SR_MAX_PARAMS];
    int n = 0;
    for (int i = 0; i < vae->n_params; i++) items[n++] = (fu_st_item){vae->params[i]->name, vae->params[i], FU_F32};
    if (vae->prior_mean) {
        items[n++] = (fu_st_item){"prior.mean", vae->prior_mean, FU_F32};
        items[n++] = (fu_st_item){"prior.scale_tril", vae->prior_tril, FU_F32};
    }
    for (int i = 0; i < sr->n_params; i++) items[n++] = (fu_st_item){sr->params[i]->name, sr->params[i], FU_F32};
    char size[16], ch[16], blocks[16];
    snprintf(size, sizeof size, "%d", 2 * vae->cfg.size);
    snprintf(ch, sizeof ch, "%d", sr->cfg.channels);
    snprintf(blocks, sizeof blocks, "%d", sr->cfg.blocks);
    fu_st_meta meta[] = {
        {"faceup.model", "vae+sr"}, {"faceup.sharp.size", size}, {"faceup.sr.channels", ch}, {"faceup.sr.blocks", blocks},
        {"faceup.sharp.range", "images in [-1,1] = sr(dec(prior.mean + prior.scale_tril w)), w ~ N(0,I)"},
    };
    return fu_st_save(path, items, n, meta, (int)(sizeof meta / sizeof meta[0]));
}

void fu_sharp_release(fu_sharp *m) {
    if (!m) return;
    fu_vae_free(m->vae);
    fu_sr_free(m->sr);
    *m = (fu_sharp){0};
}

fu_tensor *fu_sharp_decode(fu_graph *g, const fu_sharp *m, fu_tensor *z) {
    return fu_sr_forward(g, m->sr, fu_vae_decode(g, m->vae, z));
}

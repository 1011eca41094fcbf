/* libFuzzer target for the model-file readers that sit on top of safetensors / .pt: arbitrary
 * bytes as a file, read by the heads, VAE (with its latent prior), sharp generator (VAE + stage),
 * augmented-extractor and IR-SE loaders and by the generator opener (format by content; StyleGAN weight mapping), and as text
 * by the IR-SE config parser and the checkpoints' RNG-state reader. A reader must refuse or
 * return a usable model; what it accepts must survive a round trip (the IR-SE config, the RNG
 * state) or a first use (the VAE and the sharp generator decode a latent). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/graph.h"
#include "core/rng.h"
#include "face/face_extractor.h"
#include "face/heads.h"
#include "face/irse.h"
#include "faceup.h"
#include "gen/generator.h"
#include "gen/sharp.h"
#include "gen/vae.h"
#include "input_file.h"

static void read_as_text(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = 0;
    fu_irse_config cfg;
    if (fu_irse_config_parse(text, &cfg) == FU_OK) {
        char line[512];
        fu_irse_config back;
        fu_irse_config_format(&cfg, line, sizeof line);
        if (fu_irse_config_parse(line, &back) != FU_OK || memcmp(&cfg, &back, sizeof cfg) != 0) abort();
    }
    fu_rng r, again;
    if (fu_rng_from_text(text, &r)) {
        char line[256];
        fu_rng_to_text(&r, line, sizeof line);
        if (!fu_rng_from_text(line, &again) || fu_rng_u64(&r) != fu_rng_u64(&again)) abort();
    }
    free(text);
}

/* A VAE that loads decodes one latent (the small ones only: the fuzzer must stay fast). */
static void use_vae(const fu_vae *v) {
    if (v->cfg.size > 64) return;
    fu_graph *g = fu_graph_new();
    fu_tensor *z = fu_tensor_newv(2, (int64_t)1, (int64_t)v->cfg.latent);
    if (g && z && !fu_vae_decode(g, v, z)) abort();
    fu_tensor_free(z);
    fu_graph_free(g);
}

static void use_sharp(const fu_sharp *m) {
    if (m->vae->cfg.size > 32) return;
    fu_graph *g = fu_graph_new();
    fu_tensor *z = fu_tensor_newv(2, (int64_t)1, (int64_t)m->vae->cfg.latent);
    if (g && z && !fu_sharp_decode(g, m, z)) abort();
    fu_tensor_free(z);
    fu_graph_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_file(data, size);
    fu_heads_free(fu_heads_load(path));
    fu_face_extractor_free(fu_face_extractor_load(path));
    fu_irse_free(fu_irse_load(path));
    fu_vae *v = NULL;
    if (fu_vae_load(path, &v) == FU_OK) use_vae(v);
    fu_vae_free(v);
    fu_sharp sharp;
    if (fu_sharp_load(path, &sharp) == FU_OK) use_sharp(&sharp);
    fu_sharp_release(&sharp);
    fu_generator *gen = NULL;
    if (fu_generator_open(path, NULL, &gen) == FU_OK) fu_generator_free(gen);
    read_as_text(data, size);
    return 0;
}

/* faceup train faces | generator, and faceup eval generator. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "args.h"
#include "commands.h"
#include "progress.h"
#include "core/error.h"
#include "core/ops.h"
#include "eval/gen_quality.h"
#include "eval/gen_measures.h"
#include "face/models.h"
#include "face/race_judge.h"
#include "faceup.h"
#include "gen/generator.h"
#include "gen/vae.h"
#include "io/image.h"
#include "data/faces.h"
#include "train/train_generator.h"
#include "train/train_sharp.h"

static int exit_code(int rc) { return rc == FU_OK ? FU_OK : (rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT); }

/* --data is a packed face set file, or a data folder (celeba/, utkface/, lfw/) packed on the fly
 * with the given framing; *dropped counts images without a usable face. */
static int open_faces(const char *data, int frame, int size, unsigned sources, int quiet, fu_faces **set, int64_t *dropped) {
    struct stat sb;
    *dropped = 0;
    if (stat(data, &sb) != 0) return fu_fail(FU_E_INPUT, "%s: no such file or folder", data);
    if (!S_ISDIR(sb.st_mode)) return fu_faces_load(data, set);
    progress bar;
    progress_start(&bar, "packing faces", quiet);
    int rc = fu_faces_build(data, size, frame, sources, set, dropped, progress_on, &bar);
    progress_finish(&bar);
    return rc;
}

/* "ffhq" or "box" (see data/faces.h); -1 when unknown. */
static int parse_frame(const char *name) {
    if (!strcmp(name, "ffhq")) return FU_FACES_FRAME_FFHQ;
    if (!strcmp(name, "box")) return FU_FACES_FRAME_BOX;
    return -1;
}

/* A comma-separated list of source names ("utkface,celeba") as a mask of 1 << source; 0 with a
 * message when a name is unknown. */
static unsigned parse_sources(const char *list) {
    unsigned mask = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int src = 0;
        while (src < FU_FACES_N_SOURCES && strcmp(tok, fu_faces_source_name(src))) src++;
        if (src == FU_FACES_N_SOURCES) {
            fprintf(stderr, "faceup train faces: --sources: unknown source '%s' (celeba, utkface, lfw)\n", tok);
            return 0;
        }
        mask |= 1u << src;
    }
    if (!mask) fprintf(stderr, "faceup train faces: --sources is empty\n");
    return mask;
}

/* A sheet of `per_source` faces of each source (one row each), spread over the source's images. */
static int faces_sheet(const fu_faces *set, const char *path, int per_source) {
    int64_t S = set->size;
    fu_tensor *grid = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)FU_FACES_N_SOURCES * S, (int64_t)per_source * S);
    float *img = malloc((size_t)(3 * S * S) * sizeof *img);
    int rc = grid && img ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int src = 0; rc == FU_OK && src < FU_FACES_N_SOURCES; src++) {
        int64_t n = 0, k = 0;
        for (int64_t i = 0; i < set->count; i++) n += set->labels[i].source == src;
        for (int64_t i = 0, seen = 0; i < set->count && k < per_source && n > 0; i++) {
            if (set->labels[i].source != src) continue;
            if (seen++ != k * n / per_source) continue;
            fu_faces_get(set, i, 0, img);
            for (int64_t c = 0; c < 3; c++)
                for (int64_t y = 0; y < S; y++)
                    for (int64_t x = 0; x < S; x++)
                        grid->data[(c * grid->shape[2] + src * S + y) * grid->shape[3] + k * S + x] = (img[(c * S + y) * S + x] + 1) * 0.5f;
            k++;
        }
    }
    if (rc == FU_OK) rc = fu_image_save_png(path, grid);
    fu_tensor_free(grid);
    free(img);
    return rc;
}

static int train_faces(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *sheet = NULL, *frame_name = "ffhq", *source_list = "celeba,utkface,lfw";
    int quiet = 0, size = FU_FACES_SIZE;
    arg_spec specs[] = {
        {"--data", ARG_STRING, &data, 0, 0, "data folder with celeba/, utkface/, lfw/ (as ../shared/data)"},
        {"--out", ARG_STRING, &out, 0, 0, "packed face set to write"},
        {"--size", ARG_INT, &size, 8, 1024, "side of the packed faces (default 64)"},
        {"--sources", ARG_STRING, &source_list, 0, 0, "comma-separated sources to pack (default celeba,utkface,lfw)"},
        {"--frame", ARG_STRING, &frame_name, 0, 0, "ffhq (landmark alignment, default) or box (fixed per-source crop)"},
        {"--sheet", ARG_STRING, &sheet, 0, 0, "also write a PNG of sample crops, one row per source"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    int n = args_parse("train faces", "--data DIR --out FILE [--size N] [--sources LIST] [--frame ffhq|box] [--sheet PNG]", specs, argc, argv, NULL, 0);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    if (!data || !out) { fprintf(stderr, "faceup train faces: --data and --out are required\n"); return FU_E_INPUT; }
    int frame = parse_frame(frame_name);
    if (frame < 0) { fprintf(stderr, "faceup train faces: --frame must be ffhq or box, got '%s'\n", frame_name); return FU_E_INPUT; }
    unsigned sources = parse_sources(source_list);
    if (!sources) return FU_E_INPUT;
    fu_faces *set = NULL;
    int64_t dropped = 0;
    int rc = open_faces(data, frame, size, sources, quiet, &set, &dropped);
    if (rc == FU_OK) rc = fu_faces_save(set, out);
    if (rc == FU_OK && sheet) rc = faces_sheet(set, sheet, 12);
    if (rc == FU_OK) {
        int64_t counts[FU_SPLIT_ALL] = {0};
        for (int64_t i = 0; i < set->count; i++) counts[set->labels[i].split]++;
        printf("{\"faces\": %lld, \"train\": %lld, \"val\": %lld, \"test\": %lld, \"size\": %d, \"dropped\": %lld}\n",
               (long long)set->count, (long long)counts[FU_SPLIT_TRAIN], (long long)counts[FU_SPLIT_VAL],
               (long long)counts[FU_SPLIT_TEST], set->size, (long long)dropped);
    }
    if (rc != FU_OK) fprintf(stderr, "faceup train faces: %s\n", fu_last_error());
    fu_faces_free(set);
    return exit_code(rc);
}

typedef struct { progress bar; int64_t every, first_step; double start; } train_log;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Starts the speed clock at this run's first step (a resumed run starts late); true when a log
 * line is due at `step`, with the steps per second so far in *rate. */
static int train_log_due(train_log *log, int64_t step, double *rate) {
    if (log->first_step < 0) {
        log->first_step = step;
        log->start = now_s();
    }
    if (log->bar.quiet || log->every <= 0 || step % log->every || step == log->first_step) return 0;
    *rate = (double)(step - log->first_step) / fmax(now_s() - log->start, 1e-9);
    return 1;
}

/* The bar (deciles when stderr is not a terminal) plus one line every `every` steps, so a long
 * background run logs its losses and speed. */
static void on_train_step(const fu_gen_train_status *s, void *ctx) {
    train_log *log = ctx;
    char note[96];
    snprintf(note, sizeof note, "loss %.4f L1 %.4f KL %.1f", s->loss, s->rec, s->kl);
    progress_update(&log->bar, (long)s->step, (long)s->steps, note);
    double rate;
    if (!train_log_due(log, s->step, &rate)) return;
    fprintf(stderr, "%sstep %lld/%lld loss %.4f L1 %.4f edge %.4f KL %.1f | %.2f steps/s, eta %.0f min\n", log->bar.tty ? "\n" : "",
            (long long)s->step, (long long)s->steps, s->loss, s->rec, s->edge, s->kl, rate,
            (double)(s->steps - s->step) / fmax(rate, 1e-9) / 60);
}

static void on_sharp_step(const fu_sharp_train_status *s, void *ctx) {
    train_log *log = ctx;
    char note[96];
    snprintf(note, sizeof note, "L1 %.4f D %.3f", s->l1, s->d_loss);
    progress_update(&log->bar, (long)s->step, (long)s->steps, note);
    double rate;
    if (!train_log_due(log, s->step, &rate)) return;
    fprintf(stderr, "%sstep %lld/%lld L1 %.4f edge %.4f prior %.4f adv %.3f D %.3f | %.3f steps/s, %.2f CPU hours, eta %.0f min\n",
            log->bar.tty ? "\n" : "", (long long)s->step, (long long)s->steps, s->l1, s->edge, s->prior, s->adv, s->d_loss,
            rate, s->cpu_hours, (double)(s->steps - s->step) / fmax(rate, 1e-9) / 60);
}

/* faceup train sharp: the sharpening stage on a VAE (train/train_sharp.h). */
static int train_sharp(int argc, char **argv) {
    fu_sharp_train_config cfg = fu_sharp_train_defaults();
    const char *data = NULL;
    int steps = (int)cfg.steps, seed = (int)cfg.seed, sample_every = (int)cfg.sample_every, unbalanced = 0;
    int ckpt_every = (int)cfg.checkpoint_every, adv_start = (int)cfg.adv_start, adv_ramp = (int)cfg.adv_ramp;
    int threads = 0, quiet = 0, log_every = 50;
    arg_spec specs[] = {
        {"--data", ARG_STRING, &data, 0, 0, "packed face set at twice the VAE's size (faceup train faces --size 128 --sources utkface)"},
        {"--vae", ARG_STRING, &cfg.vae, 0, 0, "the VAE to sharpen, with its fitted prior (new runs)"},
        {"--out", ARG_STRING, &cfg.out, 0, 0, "sharp generator to write (checkpoint, samples, loss plot and run log beside it)"},
        {"--steps", ARG_INT, &steps, 1, 2000000000, "total training steps (default 20000)"},
        {"--batch", ARG_INT, &cfg.batch, 2, 1024, "real faces per step, plus half as many prior samples (default 8)"},
        {"--lr", ARG_FLOAT, &cfg.lr_g, 1e-7, 1, "the stage's Adam learning rate (default 2e-4)"},
        {"--lr-d", ARG_FLOAT, &cfg.lr_d, 1e-7, 1, "the discriminator's Adam learning rate (default 2e-4)"},
        {"--seed", ARG_INT, &seed, 0, 2147483647, "seed for weights, data order, noise and augmentations (default 1)"},
        {"--channels", ARG_INT, &cfg.model.channels, 4, 256, "stage width C (default 32)"},
        {"--blocks", ARG_INT, &cfg.model.blocks, 0, FU_SR_MAX_BLOCKS, "residual blocks (default 4)"},
        {"--disc-channels", ARG_INT, &cfg.disc_channels, 1, 256, "discriminator width (default 32)"},
        {"--edge", ARG_FLOAT, &cfg.edge_weight, 0, 1000, "edge-loss weight (default 1)"},
        {"--prior-weight", ARG_FLOAT, &cfg.prior_weight, 0, 1000, "prior samples' low-resolution consistency weight (default 1)"},
        {"--adv", ARG_FLOAT, &cfg.adv_weight, 0, 1000, "adversarial weight (default 0.05; 0: no GAN)"},
        {"--adv-start", ARG_INT, &adv_start, 0, 2000000000, "steps of reconstruction only before the GAN starts (default 500)"},
        {"--adv-ramp", ARG_INT, &adv_ramp, 0, 2000000000, "steps over which the adversarial weight ramps up (default 2000)"},
        {"--ema", ARG_FLOAT, &cfg.ema, 0, 0.99999, "decay of the weights' moving average the model file holds (default 0.999)"},
        {"--unbalanced", ARG_FLAG, &unbalanced, 0, 0, "the data's own race shares instead of class-balanced sampling"},
        {"--resume", ARG_FLAG, &cfg.resume, 0, 0, "continue from OUT's checkpoint (its model and settings)"},
        {"--init", ARG_STRING, &cfg.init, 0, 0, "start a new run from this sharp generator's stage"},
        {"--sample-every", ARG_INT, &sample_every, 0, 2000000000, "sample sheet and loss plot every N steps (default 250; 0: at the end)"},
        {"--checkpoint-every", ARG_INT, &ckpt_every, 0, 2000000000, "checkpoint every N steps (default 250; 0: at the end)"},
        {"--log-every", ARG_INT, &log_every, 0, 2000000000, "a loss line on stderr every N steps (default 50; 0: none)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    int n = args_parse("train sharp", "--data FILE --vae VAE --out MODEL.safetensors [flags]", specs, argc, argv, NULL, 0);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    if (cfg.init && cfg.resume) { fprintf(stderr, "faceup train sharp: --init starts a new run; it cannot be combined with --resume\n"); return FU_E_INPUT; }
    if (!data || !cfg.out || (!cfg.vae && !cfg.resume)) {
        fprintf(stderr, "faceup train sharp: --data, --out and (for a new run) --vae are required\n");
        return FU_E_INPUT;
    }
    cfg.steps = steps, cfg.seed = (uint64_t)seed, cfg.sample_every = sample_every, cfg.checkpoint_every = ckpt_every;
    cfg.adv_start = adv_start, cfg.adv_ramp = adv_ramp, cfg.balanced = !unbalanced;
    fu_set_threads(threads);
    fu_faces *set = NULL;
    int rc = fu_faces_load(data, &set);
    train_log log = {.every = log_every, .first_step = -1};
    progress_start(&log.bar, "train sharp", quiet);
    if (rc == FU_OK) rc = fu_train_sharp(&cfg, set, on_sharp_step, &log);
    progress_finish(&log.bar);
    if (rc != FU_OK) fprintf(stderr, "faceup train sharp: %s\n", fu_last_error());
    fu_faces_free(set);
    return exit_code(rc);
}

static int train_generator(int argc, char **argv) {
    fu_gen_train_config cfg = fu_gen_train_defaults();
    const char *data = NULL;
    int steps = (int)cfg.steps, seed = (int)cfg.seed, sample_every = (int)cfg.sample_every;
    int ckpt_every = (int)cfg.checkpoint_every, warmup = (int)cfg.kl_warmup, threads = 0, quiet = 0, log_every = 100;
    arg_spec specs[] = {
        {"--data", ARG_STRING, &data, 0, 0, "packed face set (faceup train faces) or a data folder"},
        {"--out", ARG_STRING, &cfg.out, 0, 0, "model to write (checkpoint, samples and loss plot beside it)"},
        {"--steps", ARG_INT, &steps, 1, 2000000000, "total training steps (default 100000)"},
        {"--batch", ARG_INT, &cfg.batch, 1, 4096, "batch size (default 32)"},
        {"--lr", ARG_FLOAT, &cfg.lr, 1e-7, 1, "Adam learning rate (default 5e-4)"},
        {"--seed", ARG_INT, &seed, 0, 2147483647, "seed for weights, data order and noise (default 1)"},
        {"--beta", ARG_FLOAT, &cfg.beta, 0, 1000, "KL weight (default 0.1, see gen/vae.h)"},
        {"--edge", ARG_FLOAT, &cfg.edge_weight, 0, 1000, "edge-loss weight (default 1)"},
        {"--kl-warmup", ARG_INT, &warmup, 0, 2000000000, "steps over which beta ramps up from 0 (default 5000)"},
        {"--size", ARG_INT, &cfg.model.size, 8, 256, "model image size, must match the data (default 64)"},
        {"--channels", ARG_INT, &cfg.model.channels, 1, 1024, "model width c (default 32)"},
        {"--latent", ARG_INT, &cfg.model.latent, 1, 4096, "latent size (default 256)"},
        {"--resume", ARG_FLAG, &cfg.resume, 0, 0, "continue from OUT's checkpoint (its model, seed, batch and loss settings)"},
        {"--init", ARG_STRING, &cfg.init, 0, 0, "start a new run from this model's weights (fresh optimiser, step 0)"},
        {"--sample-every", ARG_INT, &sample_every, 0, 2000000000, "sample sheet and loss plot every N steps (default 500; 0: at the end)"},
        {"--checkpoint-every", ARG_INT, &ckpt_every, 0, 2000000000, "checkpoint every N steps (default 500; 0: at the end)"},
        {"--log-every", ARG_INT, &log_every, 0, 2000000000, "a loss line on stderr every N steps (default 100; 0: none)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    int n = args_parse("train generator", "--data FILE|DIR --out MODEL.safetensors [flags]", specs, argc, argv, NULL, 0);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    if (cfg.init && cfg.resume) { fprintf(stderr, "faceup train generator: --init starts a new run; it cannot be combined with --resume\n"); return FU_E_INPUT; }
    if (!data || !cfg.out) { fprintf(stderr, "faceup train generator: --data and --out are required\n"); return FU_E_INPUT; }
    cfg.steps = steps;
    cfg.seed = (uint64_t)seed;
    cfg.sample_every = sample_every;
    cfg.checkpoint_every = ckpt_every;
    cfg.kl_warmup = warmup;
    fu_set_threads(threads);
    fu_faces *set = NULL;
    int64_t dropped;
    int rc = open_faces(data, FU_FACES_FRAME_FFHQ, FU_FACES_SIZE, 0, quiet, &set, &dropped);
    train_log log = {.every = log_every, .first_step = -1};
    progress_start(&log.bar, "train generator", quiet);
    if (rc == FU_OK) rc = fu_train_generator(&cfg, set, on_train_step, &log);
    progress_finish(&log.bar);
    if (rc != FU_OK) fprintf(stderr, "faceup train generator: %s\n", fu_last_error());
    fu_faces_free(set);
    return exit_code(rc);
}

/* The first 64 samples (seeds seed .. seed + 63) as an 8x8 grid at the generator's resolution. */
static int write_sample_grid(const fu_generator *gen, const fu_gen_quality_config *qc, const char *path) {
    enum { SIDE = 8 };
    int64_t S = gen->resolution, img = 3 * S * S;
    float *px = malloc(sizeof(float) * (size_t)(SIDE * SIDE * img));
    fu_tensor *sheet = px ? fu_tensor_newv(4, (int64_t)1, (int64_t)3, SIDE * S, SIDE * S) : NULL;
    int rc = sheet ? fu_gen_samples(gen, qc->seed, qc->temperature, 0, SIDE * SIDE, px) : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t k = 0; rc == FU_OK && k < SIDE * SIDE; k++)
        for (int64_t c = 0; c < 3; c++)
            for (int64_t y = 0; y < S; y++)
                memcpy(sheet->data + (c * SIDE * S + (k / SIDE) * S + y) * SIDE * S + (k % SIDE) * S,
                       px + k * img + (c * S + y) * S, sizeof(float) * (size_t)S);
    if (rc == FU_OK) rc = fu_image_save_png(path, sheet);
    fu_tensor_free(sheet);
    free(px);
    return rc;
}

/* faceup train prior: fits the VAE's latent prior on the train split and writes the model with it. */
static int train_prior(int argc, char **argv) {
    const char *gen = NULL, *data = NULL, *out = NULL;
    int threads = 0, quiet = 0;
    arg_spec specs[] = {
        {"--generator", ARG_STRING, &gen, 0, 0, "faceup VAE (.safetensors)"},
        {"--data", ARG_STRING, &data, 0, 0, "packed face set (faceup train faces) or a data folder"},
        {"--out", ARG_STRING, &out, 0, 0, "the model with its fitted prior (may be the input file)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    int n = args_parse("train prior", "--generator FILE --data FILE|DIR --out FILE", specs, argc, argv, NULL, 0);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    if (!gen || !data || !out) { fprintf(stderr, "faceup train prior: --generator, --data and --out are required\n"); return FU_E_INPUT; }
    fu_set_threads(threads);
    fu_vae *m = NULL;
    fu_faces *set = NULL;
    int64_t dropped, count = 0;
    int rc = fu_vae_load(gen, &m);
    if (rc == FU_OK) rc = open_faces(data, FU_FACES_FRAME_FFHQ, FU_FACES_SIZE, 0, quiet, &set, &dropped);
    if (rc == FU_OK) rc = fu_vae_fit_prior(m, set, FU_SPLIT_TRAIN, &count);
    if (rc == FU_OK) rc = fu_vae_save(m, out);
    if (rc == FU_OK) printf("{\"images\": %lld, \"latent\": %d, \"out\": \"%s\"}\n", (long long)count, m->cfg.latent, out);
    else fprintf(stderr, "faceup train prior: %s\n", fu_last_error());
    fu_vae_free(m);
    fu_faces_free(set);
    return exit_code(rc);
}

int cmd_train(int argc, char **argv) {
    static const subcommand subs[] = {
        {"faces", "pack the face set (FFHQ-framed crops of the shared data)", train_faces},
        {"generator", "faceup's VAE generator", train_generator},
        {"sharp", "the sharpening stage on a VAE (the sharp generator)", train_sharp},
        {"prior", "the generator's fitted latent prior", train_prior},
        {"heads", "race and attribute heads on the dlib descriptor", cmd_train_heads},
        {"extractor", "IR-SE ArcFace extractor (MPI data parallel)", cmd_train_extractor},
        {"finetune-data", "the augmented extractor's training data", cmd_train_finetune_data},
        {"finetune", "the augmented extractor (dlib ResNet fine-tuned)", cmd_train_finetune},
        {"race-judge", "eval upscale's race judge", cmd_train_race_judge},
        {"thumb-race", "--race keep's thumbnail race classifiers", cmd_train_thumb_race},
        {"race-offsets", "the race head's per-class logit offsets", cmd_train_race_offsets},
    };
    return subcommand_run("train", "faceup train: training", subs, (int)(sizeof subs / sizeof subs[0]), argc, argv);
}

/* Adds {"images": n, "psnr_db": x} for one split and source (all sources when source < 0). */
static int add_psnr(cJSON *parent, const char *key, const fu_vae *m, const fu_faces *set, int split, int source, int64_t limit) {
    double psnr;
    int64_t count;
    int rc = fu_vae_recon_psnr(m, set, split, source, limit, &psnr, &count);
    if (rc != FU_OK) return rc;
    cJSON *o = cJSON_AddObjectToObject(parent, key);
    cJSON_AddNumberToObject(o, "images", (double)count);
    if (count) cJSON_AddNumberToObject(o, "psnr_db", round(psnr * 1000) / 1000);
    else cJSON_AddNullToObject(o, "psnr_db");
    return FU_OK;
}

/* The VAE's reconstruction PSNR per source of one split (root["recon"]), when the pack is at the
 * VAE's own size (the table the VAE was trained against). */
static int add_vae_recon_table(cJSON *root, const char *path, const fu_faces *set, int split, int64_t limit) {
    fu_vae *m = NULL;
    int rc = fu_vae_load(path, &m);
    if (rc == FU_OK && set->size == m->cfg.size) {
        cJSON *recon = cJSON_AddObjectToObject(root, "recon");
        cJSON_AddStringToObject(recon, "mode", "decode(mu), PSNR on [0,1] pixels, mean over images");
        cJSON_AddStringToObject(recon, "split", fu_faces_split_name(split));
        for (int s = 0; rc == FU_OK && s < FU_FACES_N_SOURCES; s++)
            rc = add_psnr(recon, fu_faces_source_name(s), m, set, split, s, limit);
        if (rc == FU_OK) rc = add_psnr(recon, "all", m, set, split, -1, limit);
    }
    if (rc == FU_OK) cJSON_AddNumberToObject(root, "params", (double)fu_vae_param_count(m));
    fu_vae_free(m);
    return rc;
}

static void add_rounded(cJSON *o, const char *key, double value, double scale) {
    if (isfinite(value)) cJSON_AddNumberToObject(o, key, round(value * scale) / scale);
    else cJSON_AddNullToObject(o, key);
}

static cJSON *race_object(const double shares[FU_RACE_CLASSES]) {
    cJSON *o = cJSON_CreateObject();
    for (int c = 0; c < FU_RACE_CLASSES; c++) add_rounded(o, fu_race_name(c), shares[c], 1e4);
    return o;
}

static void add_distances(cJSON *o, const fu_gq_distances *d) {
    add_rounded(o, "fd", d->fd, 1e4);
    add_rounded(o, "kid", d->kid, 1e6);
    add_rounded(o, "kid_std", d->kid_std, 1e6);
    cJSON_AddNumberToObject(o, "kid_subset_size", (double)d->kid_subset);
    add_rounded(o, "precision", d->precision, 1e4);
    add_rounded(o, "recall", d->recall, 1e4);
}

static void add_sharpness(cJSON *parent, const fu_gen_quality *q) {
    cJSON *o = cJSON_AddObjectToObject(parent, "sharpness");
    cJSON_AddNumberToObject(o, "cutoff_cycles_per_pixel", FU_SHARPNESS_CUTOFF);
    add_rounded(o, "ratio_samples", q->sharpness_samples, 1e4);
    add_rounded(o, "highfreq_share_samples", q->hf_samples, 1e5);
    add_rounded(o, "highfreq_share_heldout", q->hf_heldout, 1e5);
    if (q->has_recon) {
        add_rounded(o, "ratio_recons", q->sharpness_recons, 1e4);
        add_rounded(o, "highfreq_share_recons", q->hf_recons, 1e5);
    }
    cJSON_AddStringToObject(o, "definition", "mean over images of the share of spectral energy above the cut-off (radial) of the mean-free, "
                                             "Hann-windowed luminance (0.299R+0.587G+0.114B), DC left out; ratio = samples' / held-out faces'");
}

static void add_faceres(cJSON *parent, const fu_gen_quality *q) {
    cJSON *o = cJSON_AddObjectToObject(parent, "faceres");
    add_distances(o, &q->faceres);
    add_distances(cJSON_AddObjectToObject(o, "floor_train_vs_heldout"), &q->faceres_floor);
    cJSON_AddNumberToObject(o, "knn_k", FU_GQ_KNN_K);
    cJSON_AddNumberToObject(o, "kid_subsets", FU_GQ_KID_SUBSETS);
    cJSON_AddStringToObject(o, "definition", "faceres descriptors (1024-d) of the whole image resized to 224; samples vs held-out faces; "
                                             "KID = unbiased MMD^2, kernel (x.y/d+1)^3, mean (std) over random subsets of kid_subset_size rows of each set; precision/recall "
                                             "with k-NN balls (Kynkaanniemi 2019) on equal-sized sets");
}

static void add_identity(cJSON *parent, const fu_gen_quality *q) {
    cJSON *o = cJSON_AddObjectToObject(parent, "identity");
    add_rounded(o, "fd", q->fd_identity, 1e5);
    add_rounded(o, "fd_train_vs_heldout", q->fd_identity_floor, 1e5);
    add_rounded(o, "memorised_share", q->memorised, 1e4);
    add_rounded(o, "memorised_share_heldout", q->memorised_heldout, 1e4);
    cJSON_AddNumberToObject(o, "memorisation_distance", FU_GQ_MEMO_DISTANCE);
    add_rounded(o, "nearest_train_distance_median", q->memo_nearest_median, 1e4);
    if (q->has_recon) {
        add_rounded(o, "recon_cosine", q->recon_identity_cosine, 1e4);
        add_rounded(o, "recon_psnr_db", q->recon_psnr_db, 1e3);
    }
    cJSON_AddStringToObject(o, "definition", "dlib-resnet descriptors (raw, 128-d) of the fixed FFHQ->dlib-chip warp; fd: samples vs held-out; "
                                             "memorised: samples (held-out real faces) whose nearest train face is within the distance");
}

/* The sample-quality measures (eval/gen_quality.h) as JSON under root["samples"]. */
static void add_sample_quality(cJSON *root, const fu_gen_quality *q, const fu_gen_quality_config *cfg) {
    cJSON *o = cJSON_AddObjectToObject(root, "samples");
    cJSON_AddNumberToObject(o, "samples", (double)q->n_samples);
    cJSON_AddNumberToObject(o, "heldout_faces", (double)q->n_heldout);
    cJSON_AddNumberToObject(o, "train_faces", (double)q->n_train);
    cJSON_AddNumberToObject(o, "memorisation_train_faces", (double)q->n_memo_train);
    cJSON_AddNumberToObject(o, "real_faces_pack_size", q->pack_size);
    cJSON_AddNumberToObject(o, "real_faces_downscale", q->pack_size / q->resolution);
    cJSON_AddNumberToObject(o, "temperature", cfg->temperature);
    cJSON_AddNumberToObject(o, "seed", (double)cfg->seed);
    add_sharpness(o, q);
    add_faceres(o, q);
    add_identity(o, q);
    add_rounded(o, "blazeface_rate", q->face_rate_samples, 1e4);
    add_rounded(o, "blazeface_rate_heldout", q->face_rate_heldout, 1e4);
    cJSON_AddItemToObject(o, "race_samples", race_object(q->race_samples));
    cJSON_AddItemToObject(o, "race_train", race_object(q->race_train));
    cJSON_AddStringToObject(o, "race_judge", cfg->race_judge);
}

static void on_quality(void *ctx, int64_t done, int64_t total, const char *stage) {
    progress *bar = ctx;
    if (done == 0) {
        if (bar->label) progress_finish(bar);
        progress_start(bar, stage, bar->quiet);
    }
    progress_update(bar, (long)done, (long)total, "images");
}

typedef struct eval_gen_opts {
    const char *gen, *gaussfit, *data, *split_name, *heads, *race_judge, *grid;
    int limit, threads, samples, seed, memo, quiet, json;
    float temperature;
} eval_gen_opts;

/* Everything but the printing: the JSON of the run into root. */
static int eval_generator_run(const eval_gen_opts *o, int split, cJSON *root) {
    fu_generator *gen = NULL;
    fu_faces *set = NULL;
    int64_t dropped;
    int rc = fu_generator_open(o->gen, o->gaussfit, &gen);
    if (rc == FU_OK) rc = open_faces(o->data, FU_FACES_FRAME_FFHQ, gen->resolution, 0, o->quiet, &set, &dropped);
    if (rc == FU_OK) {
        cJSON_AddStringToObject(root, "generator", o->gen);
        cJSON_AddStringToObject(root, "kind", gen->kind);
        cJSON_AddNumberToObject(root, "size", gen->resolution);
        cJSON_AddNumberToObject(root, "latent", (double)gen->latent_dim);
        cJSON_AddNumberToObject(root, "latent_rows", gen->n_latent);
    }
    if (rc == FU_OK && !strcmp(gen->kind, "vae")) rc = add_vae_recon_table(root, o->gen, set, split, o->limit);
    char heads_path[2048], judge_path[2048];
    fu_gen_quality_config qc = {o->samples, (uint64_t)o->seed, o->temperature,
                                o->heads ? o->heads : fu_shipped_path(FU_HEADS_DEFAULT, heads_path, sizeof heads_path),
                                o->race_judge ? o->race_judge : fu_shipped_path(FU_RACE_JUDGE_DEFAULT, judge_path, sizeof judge_path), o->memo};
    if (rc == FU_OK && o->samples > 0) {
        fu_gen_quality q;
        progress bar = {.quiet = o->quiet};
        rc = fu_gen_quality_run(gen, set, &qc, &q, on_quality, &bar);
        if (bar.label) progress_finish(&bar);
        if (rc == FU_OK) add_sample_quality(root, &q, &qc);
    }
    if (rc == FU_OK && o->grid) rc = write_sample_grid(gen, &qc, o->grid);
    fu_generator_free(gen);
    fu_faces_free(set);
    return rc;
}

static int eval_generator(int argc, char **argv) {
    eval_gen_opts o = {.split_name = "val", .samples = 2000, .temperature = 1};
    arg_spec specs[] = {
        {"--generator", ARG_STRING, &o.gen, 0, 0, "generator file: faceup's VAE or sharp (vae+sr) model, a StyleGAN checkpoint"},
        {"--gaussfit", ARG_STRING, &o.gaussfit, 0, 0, "StyleGAN v1: PULSE's gaussian_fit.pt or the mapping network"},
        {"--data", ARG_STRING, &o.data, 0, 0, "packed face set (faceup train faces) at the generator's size or a multiple 2^k of it, or a data folder"},
        {"--split", ARG_STRING, &o.split_name, 0, 0, "VAE reconstruction table: train, val (default), test (LFW) or all"},
        {"--limit", ARG_INT, &o.limit, 0, 2000000000, "VAE reconstruction table: at most N images per source and overall (default 0: all)"},
        {"--samples", ARG_INT, &o.samples, 0, 100000, "sample quality on N samples and at most N held-out (val) and N train faces (default 2000; 0: skip)"},
        {"--memo-faces", ARG_INT, &o.memo, 0, 2000000000, "memorisation: search the nearest of N train faces (default 0: the whole train split)"},
        {"--seed", ARG_INT, &o.seed, 0, 2000000000, "first sample seed (default 0)"},
        {"--temperature", ARG_FLOAT, &o.temperature, 0.01, 10, "sample latent std (default 1)"},
        {"--heads", ARG_STRING, &o.heads, 0, 0, "heads file whose FFHQ frame places the dlib chip (default: the shipped one)"},
        {"--race-judge", ARG_STRING, &o.race_judge, 0, 0, "race judge file (default: the shipped " FU_RACE_JUDGE_DEFAULT ")"},
        {"--grid", ARG_STRING, &o.grid, 0, 0, "also write the first 64 samples as an 8x8 PNG grid at full resolution"},
        {"--json", ARG_FLAG, &o.json, 0, 0, "JSON on stdout (always: every figure named; the flag is accepted for symmetry)"},
        {"--threads", ARG_INT, &o.threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &o.quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    int n = args_parse("eval generator", "--generator FILE --data FILE|DIR [flags]", specs, argc, argv, NULL, 0);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    int split = fu_faces_split_parse(o.split_name);
    if (!o.gen || !o.data || split < 0) {
        fprintf(stderr, "faceup eval generator: --generator and --data are required; --split is train, val, test or all\n");
        return FU_E_INPUT;
    }
    fu_set_threads(o.threads);
    cJSON *root = cJSON_CreateObject();
    int rc = eval_generator_run(&o, split, root);
    if (rc == FU_OK) {
        char *text = cJSON_Print(root);
        if (text) puts(text);
        free(text);
    } else {
        fprintf(stderr, "faceup eval generator: %s\n", fu_last_error());
    }
    cJSON_Delete(root);
    return exit_code(rc);
}

int cmd_eval(int argc, char **argv) {
    static const subcommand subs[] = {
        {"generator", "reconstruction and sample quality of a generator", eval_generator},
        {"lfw", "LFW verification accuracy", cmd_eval_lfw},
        {"upscale", "the paper's experiments on held-out faces", cmd_eval_upscale},
        {"extractor", "the augmented extractor before/after", cmd_eval_extractor},
    };
    return subcommand_run("eval", "faceup eval: evaluation", subs, (int)(sizeof subs / sizeof subs[0]), argc, argv);
}

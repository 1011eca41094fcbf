/* faceup train finetune-data: the fine-tune's cached chips and look-alikes
 * (train/finetune_data.h); faceup train finetune: the augmented extractor (train/finetune.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "face/heads.h"
#include "face/models.h"
#include "faceup.h"
#include "progress.h"
#include "train/finetune.h"
#include "train/finetune_data.h"

#define DEFAULT_GENERATOR "models/faceup-vae64.safetensors"

static int exit_code(int rc) { return rc == FU_OK ? FU_OK : (rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT); }

int cmd_train_finetune_data(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *generator = NULL;
    fu_xdata_config cfg = fu_xdata_defaults();
    int quiet = 0, threads = 0;
    arg_spec specs[] = {
        {"--data", ARG_STRING, &data, 0, 0, "data folder with celeba/, utkface/ (as ../shared/data)"},
        {"--out", ARG_STRING, &out, 0, 0, "data file to write"},
        {"--generator", ARG_STRING, &generator, 0, 0, "64x64 generator for the look-alikes (default " DEFAULT_GENERATOR ")"},
        {"--per-race", ARG_INT, &cfg.per_race, 1, 1e6, "UTKFace train faces per race (default 400)"},
        {"--celeba-every", ARG_INT, &cfg.celeba_every, 1, 1e6, "every N-th CelebA train image (default 6)"},
        {"--lookalikes-train", ARG_INT, &cfg.lookalikes_train, 0, 1e6, "train faces given a look-alike (default 400)"},
        {"--lookalikes-test", ARG_INT, &cfg.lookalikes_test, 0, 1e6, "test faces given a look-alike (default 120)"},
        {"--holdout-every", ARG_INT, &cfg.holdout_every, 1, 1e6, "keep every N-th val and test face (default 1: all)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    const char *usage = "faceup train finetune-data --data DIR --out FILE [flags]\n"
                        "Chips, FFHQ crops, teacher descriptors and look-alikes for 'faceup train finetune'.";
    int n = args_parse("train finetune-data", usage, specs, argc, argv, NULL, 0);
    if (n == -2) return FU_OK;
    if (n != 0 || !data || !out) {
        if (n == 0) fprintf(stderr, "faceup train finetune-data: --data and --out are required\n");
        return FU_E_INPUT;
    }
    fu_set_threads(threads);
    char shipped[4096];
    if (!generator) generator = fu_shipped_path(DEFAULT_GENERATOR, shipped, sizeof shipped);
    progress bar;
    progress_start(&bar, "fine-tune data", quiet);
    fu_xdata d;
    int rc = fu_xdata_build(data, generator, &cfg, &d, progress_on, &bar);
    progress_finish(&bar);
    if (rc == FU_OK) rc = fu_xdata_save(&d, out);
    if (rc == FU_OK) {
        int64_t count[3] = {0}, looks[3] = {0};
        for (int64_t i = 0; i < d.n; i++) count[d.f[i].split]++, looks[d.f[i].split] += d.f[i].has_lookalike;
        printf("{\"faces\": %lld, \"train\": %lld, \"val\": %lld, \"test\": %lld, \"lookalikes_train\": %lld, \"lookalikes_test\": %lld}\n",
               (long long)d.n, (long long)count[0], (long long)count[1], (long long)count[2], (long long)looks[0], (long long)looks[2]);
    }
    fu_xdata_free(&d);
    if (rc != FU_OK) fprintf(stderr, "faceup train finetune-data: %s\n", fu_last_error());
    return exit_code(rc);
}

static void on_step(void *ctx, int64_t step, int64_t steps, const fu_finetune_losses *l) {
    char note[128];
    snprintf(note, sizeof note, "retain %.4f race %.3f attr %.3f pair %.3f arcface %.3f", l->retain, l->race, l->attr, l->pair, l->arcface);
    progress_update(ctx, (long)step, (long)steps, note);
}

static cJSON *losses_json(const fu_finetune_losses *l) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "steps", l->steps);
    cJSON_AddNumberToObject(o, "retain", l->retain);
    cJSON_AddNumberToObject(o, "race", l->race);
    cJSON_AddNumberToObject(o, "attr", l->attr);
    cJSON_AddNumberToObject(o, "pair", l->pair);
    cJSON_AddNumberToObject(o, "arcface", l->arcface);
    return o;
}

static void print_report(const fu_finetune_report *r, const char *out) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "out", out);
    cJSON_AddNumberToObject(o, "first_step", (double)r->first_step);
    cJSON_AddNumberToObject(o, "steps_run", (double)r->steps_run);
    cJSON_AddNumberToObject(o, "identities", r->n_ids);
    cJSON_AddNumberToObject(o, "identity_faces", r->n_id_faces);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    cJSON_AddItemToObject(o, "losses_first", losses_json(&r->first));
    cJSON_AddItemToObject(o, "losses_last", losses_json(&r->last));
    char *text = cJSON_Print(o);
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
}

int cmd_train_finetune(int argc, char **argv) {
    const char *data = NULL;
    fu_finetune_config cfg = fu_finetune_defaults();
    int quiet = 0, threads = 0, steps = (int)cfg.steps, every = (int)cfg.checkpoint_every, seed = (int)cfg.seed;
    arg_spec specs[] = {
        {"--data", ARG_STRING, &data, 0, 0, "fine-tune data file (faceup train finetune-data)"},
        {"--out", ARG_STRING, &cfg.out, 0, 0, "extractor file to write (checkpoint: OUT.ckpt.safetensors)"},
        {"--heads", ARG_STRING, &cfg.heads, 0, 0, "heads to start from (default " FU_HEADS_DEFAULT ")"},
        {"--ids", ARG_STRING, &cfg.ids, 0, 0, "folder per identity for the ArcFace term (never LFW: refused when it holds LFW people)"},
        {"--lfw", ARG_STRING, &cfg.lfw, 0, 0, "LFW folder --ids is checked against (default $FACEUP_SHARED/data/lfw or ../shared/data/lfw)"},
        {"--steps", ARG_INT, &steps, 0, 1e9, "total steps (default 600)"},
        {"--batch", ARG_INT, &cfg.batch, 1, 256, "UTKFace and CelebA faces per step, each (default 8)"},
        {"--pairs", ARG_INT, &cfg.pairs, 0, 256, "look-alike faces per step (default 4)"},
        {"--id-batch", ARG_INT, &cfg.id_batch, 0, 256, "identity faces per step (default 8)"},
        {"--lr", ARG_FLOAT, &cfg.lr, 0, 1, "backbone learning rate (default 1e-6)"},
        {"--head-lr", ARG_FLOAT, &cfg.head_lr, 0, 1, "heads learning rate (default 1e-4)"},
        {"--w-retain", ARG_FLOAT, &cfg.w_retain, 0, 1e6, "identity retention weight (default 10)"},
        {"--w-race", ARG_FLOAT, &cfg.w_race, 0, 1e6, "race weight (default 1)"},
        {"--w-attr", ARG_FLOAT, &cfg.w_attr, 0, 1e6, "attribute weight (default 1)"},
        {"--w-pair", ARG_FLOAT, &cfg.w_pair, 0, 1e6, "look-alike pair weight (default 1)"},
        {"--w-arcface", ARG_FLOAT, &cfg.w_arcface, 0, 1e6, "ArcFace weight, with --ids (default 1)"},
        {"--seed", ARG_INT, &seed, 0, 2e9, "seed (default 1)"},
        {"--checkpoint-every", ARG_INT, &every, 1, 1e9, "steps between checkpoints (default 100)"},
        {"--resume", ARG_FLAG, &cfg.resume, 0, 0, "continue from OUT.ckpt.safetensors (same flags)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    const char *usage = "faceup train finetune --data FILE --out FILE [flags]\n"
                        "Fine-tunes the dlib ResNet with identity retention, race, attribute, look-alike pair\n"
                        "(and, with --ids, ArcFace) losses into faceup's augmented extractor.";
    int n = args_parse("train finetune", usage, specs, argc, argv, NULL, 0);
    if (n == -2) return FU_OK;
    if (n != 0 || !data || !cfg.out) {
        if (n == 0) fprintf(stderr, "faceup train finetune: --data and --out are required\n");
        return FU_E_INPUT;
    }
    fu_set_threads(threads);
    cfg.steps = steps, cfg.checkpoint_every = every, cfg.seed = (uint64_t)seed;
    char heads[4096];
    if (!cfg.heads) cfg.heads = fu_shipped_path(FU_HEADS_DEFAULT, heads, sizeof heads);
    fu_xdata d;
    int rc = fu_xdata_load(data, &d);
    fu_finetune_report rep;
    if (rc == FU_OK) {
        progress bar;
        progress_start(&bar, "fine-tune", quiet);
        rc = fu_finetune_run(&d, &cfg, &rep, on_step, &bar);
        progress_finish(&bar);
    }
    if (rc == FU_OK) print_report(&rep, cfg.out);
    else fprintf(stderr, "faceup train finetune: %s\n", fu_last_error());
    fu_xdata_free(&d);
    return exit_code(rc);
}

/* faceup model info FILE...: lists the tensors of weight files (.safetensors, .pt).
 * faceup model run MODEL IMAGE...: runs a face network on whole images resized to its input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "args.h"
#include "commands.h"
#include "faceup.h"
#include "core/error.h"
#include "core/ops.h"
#include "face/dlib_resnet.h"
#include "face/tfjs_graph.h"
#include "gen/weights.h"
#include "io/image.h"

/* One file as a JSON object (cJSON escapes names that come from the file). */
static cJSON *info_json(const fu_weights *w, const char *path) {
    cJSON *obj = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(obj, "tensors");
    cJSON_AddStringToObject(obj, "file", path);
    double total = 0;
    for (size_t i = 0; i < fu_weights_count(w); i++) {
        const char *name = fu_weights_name(w, i);
        int64_t shape[FU_MAX_DIMS];
        int nd = fu_weights_shape(w, name, shape);
        cJSON *t = cJSON_CreateObject(), *dims = cJSON_AddArrayToObject(t, "shape");
        cJSON_AddStringToObject(t, "name", name);
        double numel = 1;
        for (int k = 0; k < nd; k++) {
            cJSON_AddItemToArray(dims, cJSON_CreateNumber((double)shape[k]));
            numel *= (double)shape[k];
        }
        total += numel;
        cJSON_AddItemToArray(list, t);
    }
    cJSON_AddNumberToObject(obj, "parameters", total);
    return obj;
}

static void info_text(const fu_weights *w, const char *path) {
    long long total = 0;
    printf("%s: %zu tensors\n", path, fu_weights_count(w));
    for (size_t i = 0; i < fu_weights_count(w); i++) {
        const char *name = fu_weights_name(w, i);
        int64_t shape[FU_MAX_DIMS];
        int nd = fu_weights_shape(w, name, shape);
        long long numel = 1;
        printf("  %-48s [", name);
        for (int k = 0; k < nd; k++) {
            printf(k ? ",%lld" : "%lld", (long long)shape[k]);
            numel *= shape[k];
        }
        printf("]\n");
        total += numel;
    }
    printf("  %lld parameters\n", total);
}

/* ---------- model run ---------- */

#define HUMAN_MODELS "human-models-3.0.4/models"
#define MAX_OUTPUTS 8

/* A loaded network: dlib's ResNet or a TF.js graph model with its output nodes. */
typedef struct {
    fu_dlib_resnet *dlib;
    fu_tfjs_net *tfjs;
    int64_t height, width, channels;
    int n_out;
    const char *outputs[MAX_OUTPUTS];
} run_model;

static void models_root(char *buf, size_t n) {
    const char *env = getenv("FACEUP_MODELS"), *home = getenv("HOME");
    if (env) snprintf(buf, n, "%s", env);
    else snprintf(buf, n, "%s/.cache/faceup/models", home ? home : ".");
}

/* The graph's outputs: nodes no other node reads (Const and Placeholder excluded), file order. */
static int find_outputs(run_model *rm) {
    const fu_tfjs_model *m = fu_tfjs_net_model(rm->tfjs);
    char *consumed = calloc((size_t)m->n_nodes + 1, 1);
    if (!consumed) return fu_fail(FU_E_INTERNAL, "out of memory");
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_inputs; k++) {
            int id = fu_tfjs_node_id(m, m->nodes[i].inputs[k].node);
            if (id >= 0) consumed[id] = 1;
        }
    for (int i = 0; i < m->n_nodes && rm->n_out < MAX_OUTPUTS; i++) {
        const char *op = m->nodes[i].op;
        if (!consumed[i] && strcmp(op, "Const") && strcmp(op, "Placeholder") && strcmp(op, "NoOp"))
            rm->outputs[rm->n_out++] = m->nodes[i].name;
    }
    free(consumed);
    return rm->n_out ? FU_OK : fu_fail(FU_E_INPUT, "%s: the graph has no outputs", m->path);
}

/* MODEL: "dlib-resnet", a human-models name (faceres, gear, ...) or a path to a model.json. */
static int open_model(const char *name, run_model *rm) {
    char root[1024], path[2300];
    models_root(root, sizeof root);
    memset(rm, 0, sizeof *rm);
    if (!strcmp(name, "dlib-resnet")) {
        snprintf(path, sizeof path, "%s/%s", root, FU_DLIB_RESNET_MANIFEST);
        if (!(rm->dlib = fu_dlib_resnet_load(path))) return fu_last_code();
        rm->height = rm->width = FU_DLIB_RESNET_SIZE;
        rm->channels = 3;
        rm->n_out = 1;
        rm->outputs[0] = "descriptor";
        return FU_OK;
    }
    if (strchr(name, '/') || strstr(name, ".json")) snprintf(path, sizeof path, "%s", name);
    else snprintf(path, sizeof path, "%s/%s/%s.json", root, HUMAN_MODELS, name);
    if (!(rm->tfjs = fu_tfjs_net_load(path))) return fu_last_code();
    int64_t shape[FU_MAX_DIMS];
    int rank = fu_tfjs_net_input_shape(rm->tfjs, shape);
    if (rank != 4 || shape[1] <= 0 || shape[2] <= 0 || (shape[3] != 1 && shape[3] != 3))
        return fu_fail(FU_E_INPUT, "%s: input is not an image of known size (NHWC with fixed H, W and 1 or 3 channels)", path);
    rm->height = shape[1];
    rm->width = shape[2];
    rm->channels = shape[3];
    return find_outputs(rm);
}

static void close_model(run_model *rm) {
    fu_dlib_resnet_free(rm->dlib);
    fu_tfjs_net_free(rm->tfjs);
}

/* The image as the model's input [1, C, H, W]: bilinear resize of the whole picture, [0, 1],
 * RGB, or gray (ITU-R 601 luma) for one-channel models. */
static fu_tensor *model_input(fu_graph *g, const run_model *rm, fu_tensor *img) {
    fu_tensor *x = fu_resize_bilinear(g, img, rm->height, rm->width, 0);
    if (!x || rm->channels == 3) return x;
    fu_tensor *luma = fu_graph_tensor(g, 4, (int64_t[]){1, 3, 1, 1});
    if (!luma) return NULL;
    luma->data[0] = 0.299f;
    luma->data[1] = 0.587f;
    luma->data[2] = 0.114f;
    return fu_sum(g, fu_mul(g, x, luma), 1u << 1, 1);
}

static cJSON *output_json(const char *name, const fu_tensor *t) {
    cJSON *o = cJSON_CreateObject(), *shape = cJSON_AddArrayToObject(o, "shape");
    cJSON_AddStringToObject(o, "name", name);
    for (int k = 0; k < t->ndim; k++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[k]));
    cJSON_AddItemToObject(o, "values", cJSON_CreateFloatArray(t->data, (int)t->numel));
    return o;
}

static void output_text(const char *name, const fu_tensor *t) {
    char shape[96];
    double norm = 0;
    for (int64_t i = 0; i < t->numel; i++) norm += (double)t->data[i] * t->data[i];
    printf("  %s %s:", name, fu_shape_str(t, shape, sizeof shape));
    for (int64_t i = 0; i < t->numel && i < 6; i++) printf(" %.5g", t->data[i]);
    printf("%s  (L2 norm %.5g)\n", t->numel > 6 ? " ..." : "", sqrt(norm));
}

/* Runs the model on one image; adds its outputs to json (when not NULL) or prints a summary. */
static int run_image(run_model *rm, const char *image, cJSON *json) {
    fu_tensor *img = fu_image_load(image);
    if (!img) return fu_last_code();
    fu_graph *g = fu_graph_new();
    fu_tensor *out[MAX_OUTPUTS] = {0};
    int rc = g ? FU_OK : FU_E_INTERNAL;
    fu_tensor *x = rc ? NULL : model_input(g, rm, img);
    if (!x) rc = fu_last_code();
    else if (rm->dlib) rc = (out[0] = fu_dlib_resnet_forward(rm->dlib, g, x)) ? FU_OK : fu_last_code();
    else rc = fu_tfjs_net_forward(rm->tfjs, g, x, rm->n_out, rm->outputs, out);
    if (!rc) {
        cJSON *entry = json ? cJSON_CreateObject() : NULL, *list = NULL;
        if (json) {
            cJSON_AddStringToObject(entry, "image", image);
            list = cJSON_AddArrayToObject(entry, "outputs");
            cJSON_AddItemToArray(json, entry);
        } else {
            printf("%s:\n", image);
        }
        for (int k = 0; k < rm->n_out; k++) {
            if (json) cJSON_AddItemToArray(list, output_json(rm->outputs[k], out[k]));
            else output_text(rm->outputs[k], out[k]);
        }
    }
    fu_graph_free(g);
    fu_tensor_free(img);
    return rc;
}

static int model_run(int argc, char **argv) {
    int json = 0;
    char *pos[256];
    arg_spec specs[] = {{"--json", ARG_FLAG, &json, 0, 0, "print the outputs (names, shapes, values) as JSON on stdout"}, {0}};
    const char *usage =
        "[--json] MODEL IMAGE...\n"
        "Runs a face network on each image, resized (bilinear) to the network's input size, RGB in\n"
        "[0, 1]; no face detection or alignment: give face crops. MODEL: dlib-resnet (dlib's face\n"
        "descriptor, 150x150 -> 128), a human-models name (faceres, gear, emotion, ...) or a path to a\n"
        "TF.js model.json. Models are read from $FACEUP_MODELS (tools/fetch-models.sh).";
    int n = args_parse("model run", usage, specs, argc, argv, pos, 256);
    if (n == -2) return FU_OK;
    if (n < 0) return FU_E_INPUT;
    if (n < 2) {
        fprintf(stderr, "faceup model run: need a MODEL and at least one IMAGE\n");
        return FU_E_INPUT;
    }
    run_model rm;
    int rc = open_model(pos[0], &rm);
    cJSON *all = json ? cJSON_CreateArray() : NULL;
    for (int i = 1; i < n && !rc; i++) rc = run_image(&rm, pos[i], all);
    if (rc) fprintf(stderr, "faceup model run: %s\n", fu_last_error());
    else if (json) {
        char *text = cJSON_Print(all);
        if (text) puts(text);
        cJSON_free(text);
    }
    cJSON_Delete(all);
    close_model(&rm);
    return rc;
}

/* ---------- model info ---------- */

static int model_info(int argc, char **argv) {
    int json = 0;
    char *files[256];
    arg_spec specs[] = {{"--json", ARG_FLAG, &json, 0, 0, "print JSON on stdout"}, {0}};
    int n = args_parse("model info", "[--json] FILE...", specs, argc, argv, files, 256);
    if (n == -2) return FU_OK;
    if (n <= 0) {
        if (n == 0) fprintf(stderr, "faceup model info: no file given\n");
        return FU_E_INPUT;
    }
    int rc = FU_OK;
    cJSON *all = json ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < n; i++) {
        fu_weights *w;
        if (fu_weights_open(files[i], &w) != FU_OK) {
            fprintf(stderr, "faceup model info: %s\n", fu_last_error());
            rc = FU_E_INPUT;  /* the other files are still listed */
            continue;
        }
        if (json) cJSON_AddItemToArray(all, info_json(w, files[i]));
        else info_text(w, files[i]);
        fu_weights_free(w);
    }
    if (json) {
        char *text = cJSON_Print(all);
        if (text) puts(text);
        cJSON_free(text);
        cJSON_Delete(all);
    }
    return rc;
}

int cmd_model(int argc, char **argv) {
    static const subcommand subs[] = {
        {"info", "info [--json] FILE...: the tensors of weight files", model_info},
        {"run", "run [--json] MODEL IMAGE...: run a face network", model_run},
    };
    return subcommand_run("model", "faceup model: weight files and face networks", subs, 2, argc, argv);
}

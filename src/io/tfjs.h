/* TF.js graph models: model.json (graph + weights manifest) and its binary weight shards.
 *
 * model.json (format "graph-model"):
 *   modelTopology.node[]: {name, op, input: ["node", "node:k", "^control"], attr: {key: value}}
 *     where an attr value is one of {"i": "int64 as string or number"}, {"f": number},
 *     {"b": bool}, {"s": base64}, {"type": "DT_FLOAT"}, {"shape": {"dim": [{"size": "n"}]}},
 *     {"list": {"i"|"f"|"s"|"type"|"b": [...]}}, {"tensor": {...}}, {"func": {...}}.
 *   weightsManifest[]: {paths: [shard files], weights: [{name, shape, dtype, quantization?}]}:
 *     the shards of a group are concatenated and hold the group's weights back to back.
 *     dtype float32 | int32 | bool; quantization {dtype: uint8|uint16, min, scale} stores
 *     q*scale + min, {dtype: float16} stores IEEE halves.
 * Const nodes get their values from the weight of the same name.
 *
 * Everything is validated: a malformed file gives NULL and a one-line message naming the file. */
#ifndef FU_TFJS_H
#define FU_TFJS_H
#include <stddef.h>
#include <stdint.h>
#include "core/tensor.h"

typedef enum {
    FU_TFJS_ATTR_OTHER,   /* func, placeholder, ...: kept by name only */
    FU_TFJS_ATTR_INT, FU_TFJS_ATTR_FLOAT, FU_TFJS_ATTR_BOOL, FU_TFJS_ATTR_STRING,
    FU_TFJS_ATTR_TYPE, FU_TFJS_ATTR_SHAPE, FU_TFJS_ATTR_LIST, FU_TFJS_ATTR_TENSOR
} fu_tfjs_attr_kind;

typedef struct fu_tfjs_attr {
    char *key;
    fu_tfjs_attr_kind kind;
    int64_t i;            /* INT, BOOL (0/1) */
    double f;             /* FLOAT */
    char *s;              /* STRING (base64-decoded, NUL-terminated), TYPE ("DT_FLOAT") */
    size_t s_len;
    int ndim;             /* SHAPE: -1 = unknown rank; dims may be -1 (unknown) */
    int64_t shape[FU_MAX_DIMS];
    int n;                /* LIST: element count of whichever list below is set */
    int64_t *ints;        /* LIST of i or b */
    double *floats;       /* LIST of f */
    char **strs;          /* LIST of s (decoded) or type */
} fu_tfjs_attr;

typedef struct fu_tfjs_input {
    char *node;           /* producer's name */
    int index;            /* output index ("name:k"), 0 by default */
} fu_tfjs_input;

typedef struct fu_tfjs_node {
    char *name, *op;
    int n_inputs;         /* data inputs only: "^control" inputs are dropped */
    fu_tfjs_input *inputs;
    int n_attrs;
    fu_tfjs_attr *attrs;
} fu_tfjs_node;

typedef struct fu_tfjs_weight {
    char *name;
    char dtype[8];        /* "float32", "int32" or "bool" */
    int ndim;
    int64_t shape[FU_MAX_DIMS];
    int64_t numel;
    float *data;          /* values as float32 (every dtype) */
    int64_t *ints;        /* exact values for int32 and bool, NULL for float32 */
} fu_tfjs_weight;

typedef struct fu_tfjs_model {
    char *path;           /* model.json as given, for messages */
    int n_nodes;
    fu_tfjs_node *nodes;  /* file order */
    int n_weights;
    fu_tfjs_weight *weights;
    int *node_index;      /* node indices sorted by name (for lookup) */
    int *weight_index;    /* weight indices sorted by name */
} fu_tfjs_model;

/* Biggest weight shard group read (bytes). */
#define FU_TFJS_MAX_GROUP_BYTES ((size_t)1 << 31)

/* Reads model.json and the shards it lists (paths relative to its folder; absolute paths and
 * ".." are refused). NULL with a message on any error. */
fu_tfjs_model *fu_tfjs_load(const char *model_json_path);
/* Same from the JSON text in memory; shards are read relative to dir. */
fu_tfjs_model *fu_tfjs_parse(const char *json, size_t len, const char *dir, const char *label);
void fu_tfjs_free(fu_tfjs_model *m);

const fu_tfjs_node *fu_tfjs_node_find(const fu_tfjs_model *m, const char *name);   /* NULL if absent */
int fu_tfjs_node_id(const fu_tfjs_model *m, const char *name);                       /* -1 if absent */
const fu_tfjs_weight *fu_tfjs_weight_find(const fu_tfjs_model *m, const char *name); /* NULL if absent */
const fu_tfjs_attr *fu_tfjs_attr_find(const fu_tfjs_node *n, const char *key);      /* NULL if absent */

/* Typed attribute getters: the value, or def when the attribute is absent or of another kind. */
int64_t fu_tfjs_attr_int(const fu_tfjs_node *n, const char *key, int64_t def);
double fu_tfjs_attr_float(const fu_tfjs_node *n, const char *key, double def);
const char *fu_tfjs_attr_str(const fu_tfjs_node *n, const char *key, const char *def);

/* Base64 (standard alphabet, '=' padding optional) into out (capacity >= 3*ceil(len/4)).
 * Returns the decoded length, or -1 on a character outside the alphabet. */
int64_t fu_base64_decode(const char *in, size_t len, unsigned char *out);

#endif

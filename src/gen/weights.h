/* Named float32 tensors: one interface over the weight files the generators load from.
 *
 * A source is either a file (chosen by extension: ".safetensors" through io/safetensors.h,
 * ".pt" through io/pt.h; tensors of any stored dtype come out as float32) or an in-memory
 * table (random-weight models, tests). Names are the checkpoint's own (nested dicts of a .pt
 * flattened with dots, e.g. "g_ema.conv1.conv.weight"). Lookups return NEW leaf tensors the
 * caller owns, so a model can scale them in place at load time. */
#ifndef FU_GEN_WEIGHTS_H
#define FU_GEN_WEIGHTS_H
#include <stddef.h>
#include <stdint.h>
#include "core/tensor.h"

typedef struct fu_weights fu_weights;

/* Opens path by its extension. FU_OK with *out set, or an error code with a message. */
int fu_weights_open(const char *path, fu_weights **out);
/* Empty in-memory table (NULL with a message when out of memory). */
fu_weights *fu_weights_new_table(void);
/* Adds t under name to a table, taking ownership of t (also on failure). Replaces an entry of
 * the same name. FU_OK or an error (file sources are read-only). */
int fu_weights_put(fu_weights *w, const char *name, fu_tensor *t);
void fu_weights_free(fu_weights *w);   /* NULL-safe */

size_t fu_weights_count(const fu_weights *w);
const char *fu_weights_name(const fu_weights *w, size_t i);    /* NULL when out of range */
int fu_weights_has(const fu_weights *w, const char *name);
/* Number of dims and the shape of name; -1 (no message) when absent. */
int fu_weights_shape(const fu_weights *w, const char *name, int64_t shape[FU_MAX_DIMS]);
/* New contiguous float32 leaf copy of name; NULL with a message naming it when absent. */
fu_tensor *fu_weights_get(const fu_weights *w, const char *name);
/* Same, refused (NULL with a message) unless the element count is numel: weight files store
 * some tensors with extra unit dims ([1,Cout,Cin,k,k], [1,3,1,1]), so models check counts
 * and reshape (fu_weights_reshape) rather than compare shapes literally. */
fu_tensor *fu_weights_get_numel(const fu_weights *w, const char *name, int64_t numel);
/* Re-labels a leaf's shape in place (same element count); FU_OK or FU_E_INPUT. */
int fu_weights_reshape(fu_tensor *t, int ndim, const int64_t *shape);

/* The other direction: a sink that receives named tensors, e.g. a generator's intermediates
 * ("block_64x64", "convs_3", ...) as its forward builds them. fn may keep t for as long as
 * the graph lives. */
typedef struct fu_tensor_sink {
    void (*fn)(void *ctx, const char *name, fu_tensor *t);
    void *ctx;
} fu_tensor_sink;
/* Calls sink->fn when sink is non-NULL and t exists. */
void fu_tensor_sink_put(const fu_tensor_sink *sink, const char *name, fu_tensor *t);

#endif

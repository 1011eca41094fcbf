/* Safe reader of PyTorch checkpoints written by torch.save (the zip format of torch >= 1.6).
 *
 * Loading never runs code from the file: archive/data.pkl is interpreted by a restricted pickle
 * machine (io/pickle.h) that accepts only an allow-list of globals (collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 / _rebuild_tensor / _rebuild_parameter[_with_state] and the
 * torch.*Storage types); any other global is refused with an error that names it. Tensors are
 * views (offset, size, stride) into storages archive/data/<key>; every view is checked against
 * its storage at load time. Nested dicts/lists are flattened to dotted names, so
 * {'g_ema': {'conv1.weight': t}} yields "g_ema.conv1.weight"; non-tensor leaves (ints, strings,
 * None, ...) are skipped. The legacy pre-1.6 format is refused with a message.
 *
 * Usage: fu_pt_load, then fu_pt_count / fu_pt_name / fu_pt_shape to list, fu_pt_get to read one
 * tensor as a contiguous float32 leaf (any stored dtype is converted), fu_pt_free. */
#ifndef FU_PT_H
#define FU_PT_H
#include <stddef.h>
#include <stdint.h>
#include "core/tensor.h"
#include "io/dtype.h"

#define FU_PT_MAX_ENTRIES (1 << 20)
#define FU_PT_MAX_NAME 4096
#define FU_PT_MAX_NESTING 64
/* A view may hold more elements than its storage (stride 0, as torch's expand() makes) only up
 * to this count, so a tiny file cannot demand gigabytes when read. */
#define FU_PT_MAX_EXPANDED ((int64_t)1 << 24)

typedef struct fu_pt_file fu_pt_file;

/* Reads and validates the checkpoint at path. FU_OK with *out set, or an error code with a
 * one-line message naming the file (and *out NULL). */
int fu_pt_load(const char *path, fu_pt_file **out);
/* Same from memory (the bytes are copied); label names the data in messages. */
int fu_pt_load_memory(const void *data, size_t size, const char *label, fu_pt_file **out);
void fu_pt_free(fu_pt_file *f);

/* Tensors in file order (the order of the dicts in the pickle). */
size_t fu_pt_count(const fu_pt_file *f);
const char *fu_pt_name(const fu_pt_file *f, size_t i);         /* NULL when out of range */
/* Number of dimensions (0 for a scalar) and the shape; -1 when out of range. */
int fu_pt_shape(const fu_pt_file *f, size_t i, int64_t shape[FU_MAX_DIMS]);
fu_dtype fu_pt_dtype(const fu_pt_file *f, size_t i);            /* stored element type */
long fu_pt_find(const fu_pt_file *f, const char *name);         /* index or -1 */

/* New contiguous float32 leaf holding tensor i / the tensor called name (caller frees it with
 * fu_tensor_free). NULL with a message if absent. */
fu_tensor *fu_pt_get_index(const fu_pt_file *f, size_t i);
fu_tensor *fu_pt_get(const fu_pt_file *f, const char *name);

#endif

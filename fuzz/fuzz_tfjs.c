/* libFuzzer target for TF.js graph models (src/io/tfjs.c) and their conversion to an engine
 * network (src/face/tfjs_graph.c, constant conversion and placeholder lookup).
 *
 * Input layout: model.json text, then a NUL byte, then the bytes of the one weight shard. The
 * shard is written to a private temporary folder as "shard.bin" (the name the seeds' manifests
 * use), so mutations of the JSON reach the weight decoding (dtypes, quantisation, sizes) as
 * well as the node and attribute parsing. Without a NUL byte the whole input is the JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "face/tfjs_graph.h"
#include "io/tfjs.h"

static char shard_dir[64];

static void write_shard(const uint8_t *data, size_t size) {
    if (!shard_dir[0]) {
        snprintf(shard_dir, sizeof shard_dir, "/tmp/fuzz_tfjs.XXXXXX");
        if (!mkdtemp(shard_dir)) abort();
    }
    char path[96];
    snprintf(path, sizeof path, "%s/shard.bin", shard_dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t json_len = nul ? (size_t)(nul - data) : size;
    write_shard(nul ? nul + 1 : data, nul ? size - json_len - 1 : 0);
    fu_tfjs_model *m = fu_tfjs_parse((const char *)data, json_len, shard_dir, "fuzz");
    if (!m) return 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const fu_tfjs_node *n = &m->nodes[i];
        (void)fu_tfjs_node_find(m, n->name);
        (void)fu_tfjs_attr_int(n, "strides", 0);
        (void)fu_tfjs_attr_str(n, "padding", NULL);
    }
    fu_tfjs_net *net = fu_tfjs_net_new(m);   /* owns m, also on failure */
    if (net) {
        int64_t shape[8];
        (void)fu_tfjs_net_input_shape(net, shape);
        fu_tfjs_net_free(net);
    }
    return 0;
}

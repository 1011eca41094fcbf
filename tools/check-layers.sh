#!/usr/bin/env bash
# The include-layer check: a layer of src/ may include only itself and the layers below it
# (DESIGN.md, "Layers"). Siblings (face and gen; eval and train) share a rank and may not include
# each other. Fails, listing each offending include, when a file breaks this or a folder of src/
# has no rank here.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A rank=([core]=0 [io]=1 [face]=2 [gen]=2 [data]=3 [search]=4 [eval]=5 [train]=5 [cli]=6)
bad=0
for f in src/*/*.[ch]; do
    layer=${f#src/}; layer=${layer%%/*}
    if [ -z "${rank[$layer]:-}" ]; then echo "$f: src/$layer/ has no rank in $0"; bad=1; continue; fi
    while IFS=: read -r line inc; do
        used=${inc#*\"}; used=${used%%/*}
        [ "$used" = "$layer" ] && continue
        if [ -z "${rank[$used]:-}" ] || [ "${rank[$used]}" -ge "${rank[$layer]}" ]; then
            echo "$f:$line: $layer includes $used: ${inc#\#include }"; bad=1
        fi
    done < <(grep -n '^#include "[a-z_]*/' "$f" || true)
done
[ "$bad" = 0 ] && echo "layers: every include of src/ goes to its own or a lower layer"
exit "$bad"

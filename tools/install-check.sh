#!/usr/bin/env bash
# Installs faceup into a temporary DESTDIR and checks the result: the file list, the installed
# binary (--help, and finding its shipped generator from another folder), a C program built
# against the installed library through pkg-config, and `make uninstall` leaving nothing behind.
# Usage: tools/install-check.sh [BUILD]   (BUILD: the build folder, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
prefix=/usr/local
fail() { echo "install-check: $*" >&2; exit 1; }

make -s BUILD="$build" install DESTDIR="$dest" PREFIX="$prefix" >/dev/null
version=$(sed -n 's/^#define FACEUP_VERSION "\([^"]*\)".*/\1/p' include/faceup.h)
expected=(
    bin/faceup include/faceup.h lib/libfaceup.a "lib/libfaceup.so.$version" "lib/libfaceup.so.${version%%.*}"
    lib/libfaceup.so lib/pkgconfig/faceup.pc share/man/man1/faceup.1
    share/faceup/models/calibration.json share/faceup/models/README.md
)
for f in models/*.safetensors; do expected+=("share/faceup/models/${f#models/}"); done
for f in "${expected[@]}"; do [ -e "$dest$prefix/$f" ] || fail "missing $prefix/$f"; done
found=$(cd "$dest$prefix" && find . -type f -o -type l | wc -l)
[ "$found" -eq "${#expected[@]}" ] || fail "installed $found files, expected ${#expected[@]}"
soname=$(objdump -p "$dest$prefix/lib/libfaceup.so.$version" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = "libfaceup.so.${version%%.*}" ] || fail "soname is '$soname'"

bin=$dest$prefix/bin/faceup
"$bin" --help | grep -q "usage: faceup COMMAND" || fail "installed faceup --help"
# From another folder, the default generator must come from share/faceup/models.
cp examples/thumb16.png "$tmp/"
(cd "$tmp" && "$bin" upscale thumb16.png -o up.png --steps 2 --quiet) || [ $? -eq 1 ] || fail "installed faceup upscale"
ls "$tmp"/up*.png >/dev/null 2>&1 || fail "installed faceup upscale wrote no image"

# The client reads the example thumbnail and writes it back through the installed libfaceup.so.
cat > "$tmp/client.c" <<'EOF'
#include <faceup.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    fu_image *img = NULL;
    if (argc != 3 || strcmp(fu_version(), FACEUP_VERSION) != 0) return 2;
    if (fu_image_read(argv[1], &img) != FU_OK || fu_image_write(img, argv[2]) != FU_OK) {
        fprintf(stderr, "%s\n", fu_last_error());
        return 1;
    }
    printf("faceup %s: %dx%d\n", fu_version(), fu_image_width(img), fu_image_height(img));
    fu_image_free(img);
    return 0;
}
EOF
export PKG_CONFIG_PATH=$dest$prefix/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
[ "$(pkg-config --modversion faceup)" = "$version" ] || fail "pkg-config --modversion faceup"
# shellcheck disable=SC2046  # pkg-config's output is a list of flags
cc -o "$tmp/client" "$tmp/client.c" $(pkg-config --cflags --libs faceup)
out=$(LD_LIBRARY_PATH=$dest$prefix/lib "$tmp/client" "$tmp/thumb16.png" "$tmp/copy.png") \
    || fail "client built against the installed library failed"
[ "$out" = "faceup $version: 16x16" ] && [ -s "$tmp/copy.png" ] || fail "client printed '$out'"
LD_LIBRARY_PATH=$dest$prefix/lib ldd "$tmp/client" | grep -q "$dest$prefix/lib/libfaceup.so" \
    || fail "client does not use the installed libfaceup.so"

make -s BUILD="$build" uninstall DESTDIR="$dest" PREFIX="$prefix" >/dev/null
left=$(cd "$dest$prefix" && find . -type f -o -type l)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "install-check: ${#expected[@]} files installed under $prefix, client built with pkg-config ran, uninstall clean"

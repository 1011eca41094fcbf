/* The one rule for the image files a command writes (-o, --sheet), shared by upscale, align and
 * generate, checked before any compute:
 *   - an existing directory, a path ending in '/', or (when the command writes several files) a
 *     path without an image extension names a folder: one file per input in it, INPUT_STEM.png
 *     (created when missing; its parent must exist);
 *   - anything else names a file, whose extension chooses the format: .png, or .jpg / .jpeg
 *     (JPEG, quality 95); any other extension is refused;
 *   - the folder a file goes into must exist and be writable;
 *   - two outputs of one run, or an output and an input, may not be the same file.
 * Errors are FU_E_INPUT with a one-line message naming the flag. */
#ifndef FU_CLI_OUTPATH_H
#define FU_CLI_OUTPATH_H
#include "core/tensor.h"

#define OUTPATH_CAP 4096

typedef struct out_target {
    int folder;                 /* the path names a folder */
    char path[OUTPATH_CAP];     /* the file, or the folder without its trailing '/' */
} out_target;

/* What `flag out` means; several: the command writes more than one file (then a folder is
 * required). Checks the extension of a file and that its folder is writable; a folder's parent
 * must exist. Creates nothing. */
int outpath_target(const char *flag, const char *out, int several, out_target *t);

/* outpath_target for a flag that names one file (a sheet, a plot, a grid): a folder is refused. */
int outpath_file(const char *flag, const char *out, out_target *t);

/* A file path's extension if it is .png, .jpg or .jpeg (any case), else NULL and FU_E_INPUT. */
const char *outpath_extension(const char *flag, const char *path);

/* FOLDER/STEM.png, STEM being input's file name without its extension. */
int outpath_in_folder(const char *folder, const char *input, char *buf, size_t cap);

/* Creates t's folder when it names one that is missing (another process may have made it). */
int outpath_make_folder(const char *flag, const out_target *t);

/* FU_E_INPUT when two of paths[0..n) are the same file, or one of them is one of inputs[0..n_in)
 * (an input is never overwritten, --overwrite or not). Paths that do not exist yet are compared
 * by their folder's real path and their name. */
int outpath_check_distinct(const char *const *paths, int n, const char *const *inputs, int n_in);

/* Saves img as PNG or JPEG, by the extension of path (checked by outpath_target). */
int outpath_save(const char *path, const fu_tensor *img);

/* "faceup CMD: wrote PATH" on stderr: where each output went (kept by --quiet: it is a result). */
void outpath_announce(const char *cmd, const char *path);

#endif

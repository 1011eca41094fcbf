/* The "never LFW" rule for identity-labelled training data (the fine-tune's --ids, ArcFace
 * term): LFW is the identity-evaluation set (data/lfw.h), so no LFW person may be trained on.
 *
 * When the LFW folder exists, an identity folder ROOT is refused when
 *   - ROOT is the LFW folder or lies inside it, or any of its images resolves (through
 *     symbolic links) to a file inside it, or
 *   - one of ROOT's identity folders is named after an LFW person: a folder name of
 *     LFW/images/ or a name in LFW/pairs.txt (compared ignoring case, with spaces read as '_').
 * Without an LFW folder there is no list to check against, and nothing is refused. */
#ifndef FU_TRAIN_NEVER_LFW_H
#define FU_TRAIN_NEVER_LFW_H
#include <stddef.h>
#include <stdint.h>

/* $FACEUP_SHARED/data/lfw when FACEUP_SHARED is set, else ../shared/data/lfw (written to buf). */
const char *fu_lfw_default_dir(char *buf, size_t n);

/* FU_OK, or FU_E_INPUT with a one-line message naming ROOT and the offending folder or file.
 * images: the n image paths of ROOT (may be NULL / 0). lfw_dir NULL: fu_lfw_default_dir. */
int fu_never_lfw_check(const char *root, char *const *images, int64_t n, const char *lfw_dir);

#endif

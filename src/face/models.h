/* Where the face models live: $FACEUP_MODELS, default ~/.cache/faceup/models
 * (tools/fetch-models.sh fills it). */
#ifndef FU_FACE_MODELS_H
#define FU_FACE_MODELS_H
#include <stddef.h>

/* Writes "<models dir>/<rel>" into buf (size n); returns buf. */
const char *fu_model_path(const char *rel, char *buf, size_t n);

/* fu_model_path, or NULL when that file is absent, with FU_E_INPUT and a message that names it and
 * says how to get the models (tools/fetch-models.sh, or FACEUP_MODELS). */
const char *fu_model_file(const char *rel, char *buf, size_t n);

/* faceup's own shipped files (models/ of the project: generator, heads, calibration), found
 * wherever faceup is run from, the first that exists of: "<folder of the binary>/../<rel>" (the
 * build tree's build/faceup) and "<folder of the binary>/../share/faceup/<rel>" (an installed
 * faceup, `make install`); else rel as given (relative to the working folder). (No public API
 * function reads them yet; once the upscaler is public, a program using libfaceup.so will need
 * the library's own folder here, e.g. from dladdr.)
 * rel is e.g. "models/faceup-vae64.safetensors". Returns buf. */
const char *fu_shipped_path(const char *rel, char *buf, size_t n);

#define FU_BLAZEFACE_MODEL "human-models-3.0.4/models/blazeface.json"
#define FU_DLIB_LANDMARKS_MODEL "dlib/shape_predictor_68_face_landmarks.dat"

#endif

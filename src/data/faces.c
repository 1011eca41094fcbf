#include "faces.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/rng.h"
#include "face/align.h"
#include "face/detect.h"
#include "face/landmarks.h"
#include "face/models.h"
#include "io/fileutil.h"
#include "io/image.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_BYTES 128
#define HEADER_BYTES 24
#define CELEBA_ATTRS 40
/* CelebA files 000001-009000 train, the rest val; every UTKFACE_VAL_EVERY-th UTKFace file val. */
#define CELEBA_TRAIN_LAST 9000
#define UTKFACE_VAL_EVERY 20

static const char *source_names[] = {"celeba", "utkface", "lfw"};
static const char *split_names[] = {"train", "val", "test", "all"};

const char *fu_faces_source_name(int source) {
    return source >= 0 && source < FU_FACES_N_SOURCES ? source_names[source] : "?";
}
const char *fu_faces_split_name(int split) { return split >= 0 && split <= FU_SPLIT_ALL ? split_names[split] : "?"; }
int fu_faces_split_parse(const char *name) {
    for (int i = 0; i <= FU_SPLIT_ALL; i++)
        if (!strcmp(name, split_names[i])) return i;
    return -1;
}

/* ---- crop ---- */

/* Square crop boxes (left, top, side, in source pixels) that frame faces as FFHQ does: the
 * eyes a little above the centre, eye distance about a quarter of the side, chin and some hair
 * inside. Chosen on sample sheets (`faceup train faces --sheet`):
 *   CelebA aligned at half size (89x109): eyes at about y 56, 19 px apart -> side 76.
 *   UTKFace (200x200): already cropped tighter than FFHQ; the whole image is the best we have.
 *   LFW deep-funneled (250x250): eyes at about y 110; side 124 matches CelebA's scale next
 *   to a CelebA face (150 and 112 were compared: too loose, slightly tight). */
typedef struct { float left, top, side; } crop_box;
static const crop_box crop_boxes[FU_FACES_N_SOURCES] = {
    {6.5f, 20.0f, 76.0f},
    {0.0f, 0.0f, 200.0f},
    {63.0f, 58.0f, 124.0f},
};

/* Copies the box (integer-rounded, edges replicated outside the image) into a new graph
 * tensor, then resizes with the antialiased bicubic. */
int fu_faces_crop(const fu_tensor *img, int source, fu_tensor *out) {
    if (source < 0 || source >= FU_FACES_N_SOURCES || img->ndim != 4 || img->shape[0] != 1 || img->shape[1] != 3 ||
        out->ndim != 4 || out->shape[1] != 3 || out->shape[2] != out->shape[3])
        return fu_fail(FU_E_INPUT, "faces crop: bad source %d or shapes", source);
    const crop_box *b = &crop_boxes[source];
    int64_t H = img->shape[2], W = img->shape[3], side = (int64_t)lrintf(b->side);
    int64_t x0 = (int64_t)lrintf(b->left), y0 = (int64_t)lrintf(b->top);
    fu_graph *g = fu_graph_new();
    fu_tensor *box = g ? fu_graph_tensor(g, 4, (int64_t[]){1, 3, side, side}) : NULL;
    if (!box) { fu_graph_free(g); return fu_fail(FU_E_INTERNAL, "faces crop: out of memory"); }
    for (int64_t c = 0; c < 3; c++)
        for (int64_t y = 0; y < side; y++) {
            int64_t sy = y0 + y < 0 ? 0 : (y0 + y >= H ? H - 1 : y0 + y);
            for (int64_t x = 0; x < side; x++) {
                int64_t sx = x0 + x < 0 ? 0 : (x0 + x >= W ? W - 1 : x0 + x);
                box->data[(c * side + y) * side + x] = img->data[(c * H + sy) * W + sx];
            }
        }
    fu_tensor *r = fu_resize_bicubic(g, box, out->shape[2], out->shape[3]);
    int rc = r ? fu_tensor_copy_data(out, r) : fu_last_code();
    fu_graph_free(g);
    return rc;
}

/* ---- listing the sources ---- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_names(char **names, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Sorted entries of dir (no dot files); dirs_only / files ending in ".jpg" only. */
static int list_dir(const char *dir, int dirs_only, char ***out, int64_t *n_out) {
    DIR *d = opendir(dir);
    if (!d) return fu_fail(FU_E_INPUT, "%s: cannot open folder", dir);
    char **names = NULL;
    int64_t n = 0, cap = 0;
    struct dirent *e;
    int rc = FU_OK;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.') continue;
        int is_jpg = len > 4 && !strcmp(e->d_name + len - 4, ".jpg");
        if (dirs_only ? e->d_type != DT_DIR && e->d_type != DT_UNKNOWN : !is_jpg) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **grown = realloc(names, (size_t)cap * sizeof *names);
            if (!grown) { rc = fu_fail(FU_E_INTERNAL, "out of memory"); break; }
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) { rc = fu_fail(FU_E_INTERNAL, "out of memory"); break; }
        n++;
    }
    closedir(d);
    if (rc != FU_OK) { free_names(names, n); return rc; }
    if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_str);   /* names is NULL for an empty folder */
    *out = names;
    *n_out = n;
    return FU_OK;
}

typedef struct {
    fu_face_label *labels;
    int64_t n, cap;
} label_list;

static fu_face_label *push_label(label_list *l, int source, const char *path) {
    if (strlen(path) >= FU_FACES_PATH_LEN) return fu_fail_null(FU_E_INPUT, "%s: path too long for the face set", path);
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 4096;
        fu_face_label *grown = realloc(l->labels, (size_t)l->cap * sizeof *grown);
        if (!grown) return fu_fail_null(FU_E_INTERNAL, "out of memory");
        l->labels = grown;
    }
    fu_face_label *lab = &l->labels[l->n++];
    *lab = (fu_face_label){.source = (uint8_t)source, .gender = -1, .race = -1, .age = -1, .identity = -1};
    snprintf(lab->path, sizeof lab->path, "%s", path);
    return lab;
}

/* The CelebA label of file `name` among labels first..n-1 (sorted by path), or NULL. */
static fu_face_label *find_celeba(label_list *l, int64_t first, const char *name) {
    char path[FU_FACES_PATH_LEN + 32];
    snprintf(path, sizeof path, "celeba/images/%s", name);
    int64_t lo = first, hi = l->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->labels[mid].path, path);
        if (!c) return &l->labels[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* list_attr_celeba.txt: count line, names line, then "file v1 ... v40" rows. Rows for files not
 * present are ignored; present files without a row keep attrs_known = 0. */
static int celeba_attrs(const char *data_dir, label_list *l, int64_t first) {
    char path[1024];
    snprintf(path, sizeof path, "%s/celeba/list_attr_celeba.txt", data_dir);
    FILE *f = fopen(path, "r");
    if (!f) return fu_fail(FU_E_INPUT, "%s: cannot open", path);
    char line[1024];
    int rc = FU_OK;
    for (int row = 0; rc == FU_OK && fgets(line, sizeof line, f); row++) {
        if (row < 2) continue;
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok) continue;
        fu_face_label *lab = find_celeba(l, first, tok);
        for (int a = 0; a < CELEBA_ATTRS; a++) {
            char *v = strtok_r(NULL, " \t\r\n", &save);
            if (!v || (strcmp(v, "1") && strcmp(v, "-1"))) { rc = fu_fail(FU_E_INPUT, "%s: bad row %d", path, row + 1); break; }
            if (lab && !strcmp(v, "1")) lab->attrs |= (uint64_t)1 << a;
        }
        if (lab && rc == FU_OK) lab->attrs_known = ((uint64_t)1 << CELEBA_ATTRS) - 1;
    }
    fclose(f);
    return rc;
}

static int list_celeba(const char *data_dir, label_list *l) {
    char dir[1024], rel[FU_FACES_PATH_LEN + 32];
    snprintf(dir, sizeof dir, "%s/celeba/images", data_dir);
    char **names;
    int64_t n, first = l->n;
    int rc = list_dir(dir, 0, &names, &n);
    if (rc != FU_OK) return rc;
    for (int64_t i = 0; i < n && rc == FU_OK; i++) {
        snprintf(rel, sizeof rel, "celeba/images/%s", names[i]);
        fu_face_label *lab = push_label(l, FU_FACES_CELEBA, rel);
        if (!lab) rc = fu_last_code();
        else lab->split = atoi(names[i]) <= CELEBA_TRAIN_LAST ? FU_SPLIT_TRAIN : FU_SPLIT_VAL;
    }
    free_names(names, n);
    return rc == FU_OK ? celeba_attrs(data_dir, l, first) : rc;
}

/* "age_gender_race_date.jpg.chip.jpg"; fields that do not parse stay unknown. */
static void utkface_parse(const char *name, fu_face_label *lab) {
    int age, gender, race;
    if (sscanf(name, "%d_%d_%d_", &age, &gender, &race) != 3) return;
    if (age >= 0 && age < 200) lab->age = (int16_t)age;
    if (gender == 0 || gender == 1) lab->gender = (int8_t)gender;
    if (race >= 0 && race <= 4) lab->race = (int8_t)race;
}

static int list_utkface(const char *data_dir, label_list *l) {
    char dir[1024], rel[FU_FACES_PATH_LEN + 32];
    snprintf(dir, sizeof dir, "%s/utkface/images", data_dir);
    char **names;
    int64_t n;
    int rc = list_dir(dir, 0, &names, &n);
    if (rc != FU_OK) return rc;
    for (int64_t i = 0; rc == FU_OK && i < n; i++) {
        snprintf(rel, sizeof rel, "utkface/images/%s", names[i]);
        fu_face_label *lab = push_label(l, FU_FACES_UTKFACE, rel);
        if (!lab) { rc = fu_last_code(); break; }
        utkface_parse(names[i], lab);
        lab->split = i % UTKFACE_VAL_EVERY == UTKFACE_VAL_EVERY - 1 ? FU_SPLIT_VAL : FU_SPLIT_TRAIN;
    }
    free_names(names, n);
    return rc;
}

static int list_lfw(const char *data_dir, label_list *l) {
    char dir[1024], sub[1300], rel[FU_FACES_PATH_LEN + 600];
    snprintf(dir, sizeof dir, "%s/lfw/images", data_dir);
    char **people, **files;
    int64_t n_people, n_files;
    int rc = list_dir(dir, 1, &people, &n_people);
    if (rc != FU_OK) return rc;
    for (int64_t p = 0; rc == FU_OK && p < n_people; p++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, people[p]);
        if ((rc = list_dir(sub, 0, &files, &n_files)) != FU_OK) break;
        for (int64_t i = 0; rc == FU_OK && i < n_files; i++) {
            snprintf(rel, sizeof rel, "lfw/images/%s/%s", people[p], files[i]);
            fu_face_label *lab = push_label(l, FU_FACES_LFW, rel);
            if (!lab) { rc = fu_last_code(); break; }
            lab->split = FU_SPLIT_TEST;
            lab->identity = (int32_t)p;
        }
        free_names(files, n_files);
    }
    free_names(people, n_people);
    return rc;
}

/* ---- build, save, load ---- */

int fu_faces_list(const char *data_dir, fu_face_label **labels, int64_t *n) {
    label_list l = {0};
    int rc = list_celeba(data_dir, &l);
    if (rc == FU_OK) rc = list_utkface(data_dir, &l);
    if (rc == FU_OK) rc = list_lfw(data_dir, &l);
    if (rc != FU_OK) { free(l.labels); return rc; }
    *labels = l.labels;
    *n = l.n;
    return FU_OK;
}

static fu_faces *faces_alloc(int size, int64_t count) {
    fu_faces *s = calloc(1, sizeof *s);
    if (!s) return fu_fail_null(FU_E_INTERNAL, "faces: out of memory");
    s->size = size;
    s->count = count;
    s->labels = calloc((size_t)(count ? count : 1), sizeof *s->labels);
    s->pixels = malloc((size_t)(count ? count : 1) * 3 * (size_t)size * (size_t)size);
    if (!s->labels || !s->pixels) { fu_faces_free(s); return fu_fail_null(FU_E_INTERNAL, "faces: out of memory"); }
    return s;
}

void fu_faces_free(fu_faces *set) {
    if (!set) return;
    free(set->labels);
    free(set->pixels);
    free(set);
}

/* ---- framing ---- */

/* FFHQ framing: blazeface box -> dlib's 68 landmarks -> FFHQ's oriented square
 * (face/align.h), warped at 4x the output side, then area-averaged down to it (a bilinear warp
 * straight to 64 pixels would alias: the FFHQ square of an LFW face is ~160 source pixels). */
struct fu_faces_framer {
    int mode;
    fu_face_detector *det;
    fu_shape_predictor *sp;
};

enum { FFHQ_OVERSAMPLE = 4 };

fu_faces_framer *fu_faces_framer_open(int frame) {
    if (frame != FU_FACES_FRAME_BOX && frame != FU_FACES_FRAME_FFHQ) { fu_fail(FU_E_INPUT, "faces: unknown framing %d", frame); return NULL; }
    fu_faces_framer *f = calloc(1, sizeof *f);
    if (!f) { fu_fail(FU_E_INTERNAL, "out of memory"); return NULL; }
    f->mode = frame;
    if (frame == FU_FACES_FRAME_BOX) return f;
    char path[2048];
    f->det = fu_face_detector_load(fu_model_path(FU_BLAZEFACE_MODEL, path, sizeof path));
    f->sp = f->det ? fu_dlib_load_shape_predictor(fu_model_path(FU_DLIB_LANDMARKS_MODEL, path, sizeof path)) : NULL;
    if (f->sp) return f;
    fu_fail(fu_last_code(), "faces: FFHQ framing needs the face models (%s; run tools/fetch-models.sh)", fu_last_error());
    fu_faces_framer_free(f);
    return NULL;
}

void fu_faces_framer_free(fu_faces_framer *f) {
    if (!f) return;
    fu_face_detector_free(f->det);
    fu_shape_predictor_free(f->sp);
    free(f);
}

/* 68 landmarks of the chosen face; FU_E_NO_SOLUTION when no face is found. */
static int find_landmarks(const fu_faces_framer *f, const fu_tensor *img, float *lm) {
    fu_face_det dets[8];
    int n = fu_face_detect(f->det, img, 0.5f, 0.3f, dets, 8);
    if (n < 0) return fu_last_code();
    if (n == 0) return FU_E_NO_SOLUTION;
    int k = fu_face_pick(dets, n, (int)img->shape[3], (int)img->shape[2]);
    fu_gray_image *gray = fu_gray_from_rgb(img);
    if (!gray) return fu_last_code();
    int rc = fu_shape_predict(f->sp, gray, fu_face_box_for_landmarks(&dets[k]), lm);
    fu_gray_free(gray);
    return rc;
}

/* Index into [0, n) mirrored at the borders, any distance away (period 2n, edge pixels repeated
 * like numpy's 'reflect' with the edge included, i.e. 'symmetric'). */
static int64_t mirror_index(int64_t i, int64_t n) {
    int64_t period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

/* Per-channel median of an image plane (a copy is sorted). */
static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Margin (pixels) by which the warp's output square reaches outside img, 0 when it stays inside. */
static int64_t warp_overhang(const double theta[6], int64_t side, int64_t h, int64_t w) {
    double worst = 0;
    for (int c = 0; c < 4; c++) {
        double u = (c & 1) ? (double)(side - 1) : 0, v = (c & 2) ? (double)(side - 1) : 0;
        double x = theta[0] * u + theta[1] * v + theta[2], y = theta[3] * u + theta[4] * v + theta[5];
        double over[4] = {-x, x - (double)(w - 1), -y, y - (double)(h - 1)};
        for (int k = 0; k < 4; k++) worst = over[k] > worst ? over[k] : worst;
    }
    return (int64_t)ceil(worst) + 2;
}

/* Box blur of one plane in place, radius r along rows then columns (edges mirrored); tmp holds
 * max(h, w) floats. Three passes approximate a Gaussian of sigma sqrt(r (r + 1)). */
static void box_blur_plane(float *p, int64_t h, int64_t w, int64_t r, float *tmp) {
    for (int pass = 0; pass < 2; pass++) {
        int64_t n = pass == 0 ? w : h, lines = pass == 0 ? h : w;
        int64_t step = pass == 0 ? 1 : w, line_step = pass == 0 ? w : 1;
        for (int64_t l = 0; l < lines; l++) {
            float *q = p + l * line_step;
            double sum = 0;
            for (int64_t k = -r; k <= r; k++) sum += q[mirror_index(k, n) * step];
            for (int64_t i = 0; i < n; i++) {
                tmp[i] = (float)(sum / (double)(2 * r + 1));
                sum += q[mirror_index(i + r + 1, n) * step] - q[mirror_index(i - r, n) * step];
            }
            for (int64_t i = 0; i < n; i++) q[i * step] = tmp[i];
        }
    }
}

/* FFHQ's recipe for squares that reach past the photo (tight crops such as UTKFace's): pad by
 * reflection, blur the padding (Gaussian of sigma = 2% of the square's side, as FFHQ; three box
 * passes here) with a ramp from sharp to blurred over the photo's outer pad/3 pixels, and fade the
 * padding towards the photo's median colour with the distance d from the photo (weight d / pad),
 * so the frame shows a soft continuation instead of black or a sharp mirror image.
 * New image [1,C,H+2p,W+2p]. */
static fu_tensor *pad_reflect_fade(const fu_tensor *img, int64_t pad, double square_side) {
    int64_t c = img->shape[1], h = img->shape[2], w = img->shape[3];
    int64_t oh = h + 2 * pad, ow = w + 2 * pad;
    int64_t r = (int64_t)ceil(0.02 * square_side);
    fu_tensor *out = fu_tensor_new(4, (int64_t[]){1, c, oh, ow});
    float *sorted = out ? malloc((size_t)(h * w) * sizeof *sorted) : NULL;
    float *blur = sorted ? malloc((size_t)(oh * ow + (oh > ow ? oh : ow)) * sizeof *blur) : NULL;
    if (!blur) {
        fu_tensor_free(out);
        free(sorted);
        fu_fail(FU_E_INTERNAL, "faces: out of memory padding a %lldx%lld image", (long long)w, (long long)h);
        return NULL;
    }
    for (int64_t ch = 0; ch < c; ch++) {
        const float *src = img->data + ch * h * w;
        memcpy(sorted, src, (size_t)(h * w) * sizeof *sorted);
        qsort(sorted, (size_t)(h * w), sizeof *sorted, cmp_float);
        float median = sorted[h * w / 2];
        float *dst = out->data + ch * oh * ow;
        for (int64_t y = 0; y < oh; y++)
            for (int64_t x = 0; x < ow; x++) dst[y * ow + x] = src[mirror_index(y - pad, h) * w + mirror_index(x - pad, w)];
        memcpy(blur, dst, (size_t)(oh * ow) * sizeof *blur);
        for (int k = 0; k < 3; k++) box_blur_plane(blur, oh, ow, r, blur + oh * ow);
        for (int64_t y = 0; y < oh; y++) {
            int64_t sy = y - pad, dy = sy < 0 ? -sy : (sy >= h ? sy - h + 1 : 0);
            int64_t ey = sy < h - 1 - sy ? sy : h - 1 - sy;   /* inside: distance to the nearest edge */
            for (int64_t x = 0; x < ow; x++) {
                int64_t sx = x - pad, dx = sx < 0 ? -sx : (sx >= w ? sx - w + 1 : 0);
                int64_t ex = sx < w - 1 - sx ? sx : w - 1 - sx;
                int64_t d = dx > dy ? dx : dy, e = ex < ey ? ex : ey;
                float to_blur = d > 0 ? 1.0f : 1.0f - 3.0f * (float)e / (float)pad;
                float v = dst[y * ow + x];
                if (to_blur > 0) v += (blur[y * ow + x] - v) * to_blur;
                float fade = (float)d / (float)pad;
                dst[y * ow + x] = v + (median - v) * (fade < 1 ? fade : 1);
            }
        }
    }
    free(sorted);
    free(blur);
    return out;
}

/* theta of the oversampled square composed with the area average: output pixel u covers
 * square pixels k u .. k u + k - 1, whose centre is k u + (k - 1) / 2. */
static void area_theta(const double big[6], int k, double theta[6]) {
    double c = (k - 1) / 2.0;
    for (int r = 0; r < 2; r++) {
        const double *t = big + 3 * r;
        theta[3 * r] = k * t[0], theta[3 * r + 1] = k * t[1], theta[3 * r + 2] = t[2] + c * (t[0] + t[1]);
    }
}

static int frame_ffhq(const fu_faces_framer *f, fu_tensor *img, fu_tensor *out, double theta_out[6]) {
    float lm[136];
    double theta[6];
    int rc = find_landmarks(f, img, lm);
    int64_t side = out->shape[2] * FFHQ_OVERSAMPLE;
    if (rc == FU_OK) rc = fu_align_theta(FU_ALIGN_FFHQ, lm, (int)side, theta);
    if (rc != FU_OK) return rc == FU_E_INPUT ? FU_E_NO_SOLUTION : rc;   /* degenerate landmarks: no usable face */
    if (theta_out) area_theta(theta, FFHQ_OVERSAMPLE, theta_out);   /* in the photo's pixels, before any padding */
    int64_t h = img->shape[2], w = img->shape[3];
    int64_t pad = warp_overhang(theta, side, h, w);
    if (pad > 2 * (h > w ? h : w)) return FU_E_NO_SOLUTION;   /* the face is a small part of a huge square: landmarks are off */
    double square_side = (double)side * hypot(theta[0], theta[3]);   /* in photo pixels */
    fu_tensor *padded = pad > 2 ? pad_reflect_fade(img, pad, square_side) : NULL;
    if (pad > 2 && !padded) return fu_last_code();
    if (padded) {
        theta[2] += (double)pad;
        theta[5] += (double)pad;
    }
    fu_graph *g = fu_graph_new();
    fu_tensor *big = g ? fu_align_warp(g, padded ? padded : img, theta, (int)side) : NULL;
    fu_tensor *small = big ? fu_resize_area(g, big, out->shape[2], out->shape[3]) : NULL;
    rc = small ? fu_tensor_copy_data(out, small) : fu_last_code();
    fu_graph_free(g);
    fu_tensor_free(padded);
    return rc;
}

int fu_faces_frame(const fu_faces_framer *f, fu_tensor *img, int source, fu_tensor *out, double theta[6]) {
    if (f->mode == FU_FACES_FRAME_FFHQ) return frame_ffhq(f, img, out, theta);
    int rc = fu_faces_crop(img, source, out);
    if (rc == FU_OK && theta) {
        const crop_box *b = &crop_boxes[source];
        double s = lrintf(b->side) / (double)out->shape[3];
        theta[0] = s, theta[1] = 0, theta[2] = lrintf(b->left) + 0.5 * s - 0.5;
        theta[3] = 0, theta[4] = s, theta[5] = lrintf(b->top) + 0.5 * s - 0.5;
    }
    return rc;
}

/* Frames one image into dst (uint8 CHW). FU_E_NO_SOLUTION: no face found (the caller drops it). */
static int load_one(const fu_faces_framer *f, const char *data_dir, const fu_face_label *lab, fu_tensor *face, uint8_t *dst) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", data_dir, lab->path);
    fu_tensor *img = fu_image_load(path);
    if (!img) return fu_last_code();
    int rc = fu_faces_frame(f, img, lab->source, face, NULL);
    fu_tensor_free(img);
    if (rc == FU_E_NO_SOLUTION) return rc;
    if (rc != FU_OK) return fu_fail(rc, "%s: %s", path, fu_last_error());
    for (int64_t k = 0; k < face->numel; k++) {
        float v = face->data[k] * 255.0f;
        dst[k] = (uint8_t)lrintf(v < 0 ? 0 : (v > 255 ? 255 : v));
    }
    return FU_OK;
}

/* Drops the labels whose source bit (1 << source) is not in `sources`, keeping the order. */
static void keep_sources(label_list *l, unsigned sources) {
    int64_t kept = 0;
    for (int64_t i = 0; i < l->n; i++)
        if (sources & (1u << l->labels[i].source)) l->labels[kept++] = l->labels[i];
    l->n = kept;
}

int fu_faces_build(const char *data_dir, int size, int frame, unsigned sources, fu_faces **out, int64_t *dropped,
                   fu_progress_fn progress, void *ctx) {
    *out = NULL;
    *dropped = 0;
    if (size < 8 || size > 1024) return fu_fail(FU_E_INPUT, "faces: size %d out of 8..1024", size);
    fu_faces_framer *f = fu_faces_framer_open(frame);
    int rc = f ? FU_OK : fu_last_code();
    label_list l = {0};
    if (rc == FU_OK) rc = fu_faces_list(data_dir, &l.labels, &l.n);
    if (rc == FU_OK && sources) keep_sources(&l, sources);
    fu_faces *set = rc == FU_OK ? faces_alloc(size, l.n) : NULL;
    fu_tensor *face = set ? fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)size, (int64_t)size) : NULL;
    if (rc == FU_OK && !face) rc = fu_last_code();
    int64_t img_bytes = 3 * (int64_t)size * size, kept = 0;
    for (int64_t i = 0; rc == FU_OK && i < l.n; i++) {
        rc = load_one(f, data_dir, &l.labels[i], face, set->pixels + kept * img_bytes);
        if (rc == FU_OK) set->labels[kept++] = l.labels[i];
        else if (rc == FU_E_NO_SOLUTION) { (*dropped)++; rc = FU_OK; }
        if (progress && (i % 256 == 255 || i == l.n - 1)) progress(ctx, i + 1, l.n, "faces");
    }
    fu_tensor_free(face);
    free(l.labels);
    fu_faces_framer_free(f);
    if (rc != FU_OK) { fu_faces_free(set); return rc; }
    set->count = kept;
    *out = set;
    return FU_OK;
}

static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put_u64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get_u32(const unsigned char *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get_u64(const unsigned char *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

static void encode_record(const fu_face_label *lab, unsigned char *r) {
    memset(r, 0, RECORD_BYTES);
    memcpy(r, lab->path, FU_FACES_PATH_LEN);
    r[96] = lab->source;
    r[97] = lab->split;
    r[98] = (unsigned char)lab->gender;
    r[99] = (unsigned char)lab->race;
    r[100] = (unsigned char)((uint16_t)lab->age & 0xff);
    r[101] = (unsigned char)((uint16_t)lab->age >> 8);
    put_u32(r + 104, (uint32_t)lab->identity);
    put_u64(r + 112, lab->attrs);
    put_u64(r + 120, lab->attrs_known);
}

static int decode_record(const unsigned char *r, fu_face_label *lab, const char *path, int64_t i) {
    memcpy(lab->path, r, FU_FACES_PATH_LEN);
    lab->source = r[96];
    lab->split = r[97];
    lab->gender = (int8_t)r[98];
    lab->race = (int8_t)r[99];
    lab->age = (int16_t)(uint16_t)(r[100] | r[101] << 8);
    lab->identity = (int32_t)get_u32(r + 104);
    lab->attrs = get_u64(r + 112);
    lab->attrs_known = get_u64(r + 120);
    if (lab->path[FU_FACES_PATH_LEN - 1] || lab->source >= FU_FACES_N_SOURCES || lab->split >= FU_SPLIT_ALL)
        return fu_fail(FU_E_INPUT, "%s: record %lld is corrupt", path, (long long)i);
    return FU_OK;
}

int fu_faces_save(const fu_faces *set, const char *path) {
    fu_atomic_file af;
    int rc = fu_atomic_open(&af, path);
    if (rc != FU_OK) return rc;
    unsigned char head[HEADER_BYTES], rec[RECORD_BYTES];
    memcpy(head, "FUFACES1", 8);
    put_u32(head + 8, (uint32_t)set->size);
    put_u32(head + 12, RECORD_BYTES);
    put_u64(head + 16, (uint64_t)set->count);
    int ok = fwrite(head, 1, sizeof head, af.f) == sizeof head;
    for (int64_t i = 0; ok && i < set->count; i++) {
        encode_record(&set->labels[i], rec);
        ok = fwrite(rec, 1, sizeof rec, af.f) == sizeof rec;
    }
    size_t px = (size_t)set->count * 3 * (size_t)set->size * (size_t)set->size;
    ok = ok && fwrite(set->pixels, 1, px, af.f) == px;
    if (!ok) {
        fu_atomic_abort(&af);
        return fu_fail(FU_E_INPUT, "%s: write failed", path);
    }
    return fu_atomic_commit(&af);
}

/* Refuses files over 16 GiB before reading. */
#define MAX_FILE_BYTES ((size_t)16 << 30)

int fu_faces_load(const char *path, fu_faces **out) {
    *out = NULL;
    unsigned char *data;
    size_t n;
    int rc = fu_read_file(path, MAX_FILE_BYTES, &data, &n);
    if (rc != FU_OK) return rc;
    uint32_t size = n >= HEADER_BYTES ? get_u32(data + 8) : 0, rec = n >= HEADER_BYTES ? get_u32(data + 12) : 0;
    uint64_t count = n >= HEADER_BYTES ? get_u64(data + 16) : 0;
    if (n < HEADER_BYTES || memcmp(data, "FUFACES1", 8) || size < 8 || size > 1024 || rec != RECORD_BYTES ||
        count > n / RECORD_BYTES || HEADER_BYTES + count * (RECORD_BYTES + 3 * (uint64_t)size * size) != n) {
        free(data);
        return fu_fail(FU_E_INPUT, "%s: not a faceup face set (bad header or length)", path);
    }
    fu_faces *set = faces_alloc((int)size, (int64_t)count);
    for (uint64_t i = 0; set && rc == FU_OK && i < count; i++)
        rc = decode_record(data + HEADER_BYTES + i * RECORD_BYTES, &set->labels[i], path, (int64_t)i);
    if (!set) rc = fu_last_code();
    if (rc == FU_OK) memcpy(set->pixels, data + HEADER_BYTES + count * RECORD_BYTES, count * 3 * (size_t)size * size);
    free(data);
    if (rc != FU_OK) { fu_faces_free(set); return rc; }
    *out = set;
    return FU_OK;
}

void fu_faces_get(const fu_faces *set, int64_t i, int flip, float *dst) {
    int64_t S = set->size;
    const uint8_t *src = set->pixels + i * 3 * S * S;
    for (int64_t c = 0; c < 3; c++)
        for (int64_t y = 0; y < S; y++)
            for (int64_t x = 0; x < S; x++)
                dst[(c * S + y) * S + x] = src[(c * S + y) * S + (flip ? S - 1 - x : x)] / 127.5f - 1.0f;
}

/* ---- loader ---- */

/* SplitMix64's finaliser: a well-mixed 64-bit hash of a 64-bit input. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int fu_faces_loader_init(fu_faces_loader *l, const fu_faces *set, int split, uint64_t seed, int flip) {
    *l = (fu_faces_loader){.set = set, .seed = seed, .flip = flip, .epoch = -1};
    for (int64_t i = 0; i < set->count; i++) l->n += split == FU_SPLIT_ALL || set->labels[i].split == split;
    if (l->n == 0) return fu_fail(FU_E_INPUT, "faces: the %s split is empty", fu_faces_split_name(split));
    l->members = malloc((size_t)l->n * sizeof *l->members);
    l->perm = malloc((size_t)l->n * sizeof *l->perm);
    if (!l->members || !l->perm) { fu_faces_loader_free(l); return fu_fail(FU_E_INTERNAL, "faces: out of memory"); }
    int64_t k = 0;
    for (int64_t i = 0; i < set->count; i++)
        if (split == FU_SPLIT_ALL || set->labels[i].split == split) l->members[k++] = i;
    return FU_OK;
}

static int race_group(const fu_face_label *lab) { return lab->race >= 0 && lab->race < 5 ? lab->race : 5; }

int fu_faces_loader_init_balanced(fu_faces_loader *l, const fu_faces *set, int split, uint64_t seed, int flip) {
    int rc = fu_faces_loader_init(l, set, split, seed, flip);
    if (rc != FU_OK) return rc;
    int64_t count[FU_FACES_N_GROUPS] = {0}, k = 0;
    for (int64_t i = 0; i < l->n; i++) count[race_group(&set->labels[l->members[i]])]++;
    for (int g = 0; g < FU_FACES_N_GROUPS; g++) {   /* the plain order's buffer becomes the grouped list */
        if (!count[g]) continue;
        l->group_start[l->n_groups++] = k;
        for (int64_t i = 0; i < l->n; i++)
            if (race_group(&set->labels[l->members[i]]) == g) l->perm[k++] = l->members[i];
    }
    l->group_start[l->n_groups] = k;
    memcpy(l->members, l->perm, (size_t)l->n * sizeof *l->members);
    return FU_OK;
}

void fu_faces_loader_free(fu_faces_loader *l) {
    free(l->members);
    free(l->perm);
    l->members = l->perm = NULL;
}

static void loader_epoch(fu_faces_loader *l, int64_t epoch) {
    if (l->epoch == epoch) return;
    fu_rng r;
    fu_rng_seed(&r, mix64(l->seed ^ mix64((uint64_t)epoch + 1)));
    for (int64_t i = 0; i < l->n; i++) l->perm[i] = i;
    fu_rng_shuffle(&r, l->perm, l->n);
    l->epoch = epoch;
}

void fu_faces_loader_batch(fu_faces_loader *l, int64_t pos, int batch, float *x, int64_t *idx) {
    int64_t img = 3 * (int64_t)l->set->size * l->set->size;
    for (int b = 0; b < batch; b++) {
        int64_t p = pos + b, i;
        if (l->n_groups) {
            int g = (int)(p % l->n_groups);
            int64_t first = l->group_start[g], size = l->group_start[g + 1] - first;
            i = l->members[first + (int64_t)(mix64(l->seed ^ mix64((uint64_t)p + 0x51ed)) % (uint64_t)size)];
        } else {
            loader_epoch(l, p / l->n);
            i = l->members[l->perm[p % l->n]];
        }
        int flip = l->flip && (mix64(l->seed * 0x9e3779b97f4a7c15ULL ^ (uint64_t)p) & 1);
        fu_faces_get(l->set, i, flip, x + b * img);
        if (idx) idx[b] = i;
    }
}

#include "analyze.h"
#include <string.h>

const char *const fu_race_names[FU_N_RACES] = {"white", "black", "asian", "indian", "other"};
const char *const fu_emotion_names[FU_N_EMOTIONS] = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};

static const float age_centres[7] = {15, 23, 28, 35.5f, 45.5f, 55.5f, 65};

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

float fu_gear_age(const float *bins) {
    int order[7];
    for (int i = 0; i < 7; i++) order[i] = i;
    for (int i = 1; i < 7; i++)   /* insertion sort, most probable first (stable on ties) */
        for (int j = i; j > 0 && bins[order[j]] > bins[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    float age = age_centres[order[0]];
    for (int i = 1; i < 7; i++) age += bins[order[i]] * (age_centres[order[i]] - age);
    return age;
}

void fu_face_attributes_read(const float *gear, const float *emotion, fu_face_attributes *out) {
    memset(out, 0, sizeof *out);
    if (gear) {   /* age_output (7), gender_output (2), race_output (5) */
        memcpy(out->age_bins, gear, sizeof out->age_bins);
        out->age = fu_gear_age(gear);
        out->p_male = gear[7], out->p_female = gear[8];
        memcpy(out->race, gear + 9, sizeof out->race);
        out->race_best = argmax(out->race, FU_N_RACES);
    }
    if (emotion) {
        memcpy(out->emotion, emotion, sizeof out->emotion);
        out->emotion_best = argmax(out->emotion, FU_N_EMOTIONS);
        out->smiling = emotion[3];
    }
}

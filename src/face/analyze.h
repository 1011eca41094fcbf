/* Face attributes from human-models' gear and emotion networks (outputs as face/pipeline.h
 * returns them), read as @vladmandic/human 3.x reads them (facts from its gear.ts and
 * emotion.ts):
 *
 *   gear race    5 probabilities: white, black, asian, indian, other
 *   gear gender  2 probabilities, [male, female] (human: male when p[0] > p[1])
 *   gear age     7 bins (<= 20, 21-25, 26-30, 31-40, 41-50, 51-60, > 60) with centres
 *                w = 15, 23, 28, 35.5, 45.5, 55.5, 65; with the bins sorted by probability,
 *                age = w(best), then for each next bin i: age += p_i (w_i - age)
 *   emotion      7 probabilities: angry, disgust, fear, happy, sad, surprise, neutral;
 *                smiling = P(happy) */
#ifndef FU_FACE_ANALYZE_H
#define FU_FACE_ANALYZE_H

#define FU_GEAR_DIM 14
#define FU_EMOTION_DIM 7
#define FU_N_RACES 5
#define FU_N_EMOTIONS 7

extern const char *const fu_race_names[FU_N_RACES];
extern const char *const fu_emotion_names[FU_N_EMOTIONS];

typedef struct {
    float race[FU_N_RACES];
    int race_best;
    float p_male, p_female;
    float age;
    float age_bins[7];
    float emotion[FU_N_EMOTIONS];
    int emotion_best;
    float smiling;            /* P(happy) */
} fu_face_attributes;

/* Reads gear's 14 outputs and emotion's 7 (either may be NULL: those fields are zero). */
void fu_face_attributes_read(const float *gear, const float *emotion, fu_face_attributes *out);
/* Human's age from the 7 bin probabilities (see above). */
float fu_gear_age(const float *bins);

#endif

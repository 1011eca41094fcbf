#include "faceup.h"

const char *fu_version(void) { return FACEUP_VERSION; }

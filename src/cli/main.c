#include <stdio.h>
#include <string.h>
#include "faceup.h"

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) {
        printf("faceup %s\n", FACEUP_VERSION);
        return 0;
    }
    fprintf(stderr, "faceup: usage: faceup COMMAND ... (see README.md)\n");
    return FU_E_INPUT;
}

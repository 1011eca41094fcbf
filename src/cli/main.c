/* faceup: command-line entry point. Thin: parse the subcommand, call the library. */
#include <stdio.h>
#include <string.h>
#include "commands.h"
#include "faceup.h"

typedef struct { const char *name, *summary; int (*run)(int argc, char **argv); } command;

static const command commands[] = {
    {"selfcheck", "train a tiny conv net for a few steps and check that the engine learns", cmd_selfcheck},
    {"model", "model info FILE...: list the tensors of .safetensors / .pt weight files", cmd_model},
    {"generate", "images from a StyleGAN2 checkpoint, one per seed, as a PNG grid", cmd_generate},
    {"upscale", "faces whose downscale matches each thumbnail (PULSE-style latent search)", cmd_upscale},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "faceup %s: identity- and attribute-preserving face thumbnail upscaling\n\nusage: faceup COMMAND [ARGS]\n\ncommands:\n", FACEUP_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'faceup COMMAND --help' describes a command's flags. Exit status: 0 success, 1 no solution\nwithin eps, 2 bad input or usage, 3 internal error.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return FU_E_INPUT; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) { usage(stdout); return FU_OK; }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) { printf("faceup %s\n", FACEUP_VERSION); return FU_OK; }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "faceup: unknown command '%s' (try 'faceup help')\n", argv[1]);
    return FU_E_INPUT;
}

/* faceup: command-line entry point. Thin: parse the subcommand, call the library. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "args.h"
#include "commands.h"
#include "faceup.h"

static const subcommand commands[] = {
    {"selfcheck", "train a tiny conv net for a few steps and check that the engine learns", cmd_selfcheck},
    {"model", "model info FILE...: list the tensors of weight files; model run MODEL IMAGE...: run a face network", cmd_model},
    {"generate", "images from a StyleGAN2 checkpoint, one per seed, as a PNG grid", cmd_generate},
    {"upscale", "faces whose downscale matches each thumbnail (PULSE-style latent search)", cmd_upscale},
    {"align", "align IMG... -o OUT: detect the face, 68 landmarks, aligned crop (ffhq, dlib or arcface)", cmd_align},
    {"train", "training: faces, generator, sharp, prior, heads, extractor, finetune-data, finetune, race-judge, thumb-race, race-offsets (faceup train --help)", cmd_train},
    {"eval", "evaluation: generator, lfw, upscale, extractor (faceup eval --help)", cmd_eval},
    {"embed", "embed IMG...: face descriptor (dlib-resnet or faceres) as JSON", cmd_embed},
    {"compare", "compare A B: similarity of two faces and a same/different decision calibrated on LFW", cmd_compare},
    {"analyze", "analyze IMG...: race, gender, age (gear) and emotion, smiling (emotion)", cmd_analyze},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

/* OpenMP's default wait policy keeps idle threads spinning. On a shared machine (CI, a laptop
 * running other jobs) that made 2-thread runs 5-80x slower (bench/RESULTS.md, face networks).
 * libgomp reads the policy once, when it loads, so faceup sets it and re-executes itself, unless
 * the user chose a policy. If the exec fails, faceup carries on with the default. */
static void prefer_passive_wait(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv);
}

/* oneDNN 2.6 crashes (SIGSEGV in its JIT code generator, under dnnl_primitive_create or the first
 * dnnl_sgemm) instead of failing when the address space runs out (ulimit -v): probing for free
 * address space first did not prevent it. A crash is an internal error: one line and exit 3,
 * never a signal. Not under AddressSanitizer, whose own report says more. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifndef UNDER_ASAN
static void crashed(int sig) {
    static const char msg[] = "faceup: internal error: crashed (most likely out of memory)\n";
    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) _exit(FU_E_INTERNAL);
    _exit(FU_E_INTERNAL);
}
#endif

static void exit_3_on_crash(void) {
#ifndef UNDER_ASAN
    static char alt_stack[64 * 1024];   /* a stack overflow leaves no stack for the handler */
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack};
    struct sigaction sa = {.sa_handler = crashed, .sa_flags = SA_ONSTACK};
    sigaltstack(&ss, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
#endif
}

int main(int argc, char **argv) {
    prefer_passive_wait(argv);
    exit_3_on_crash();
    if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) { printf("faceup %s\n", FACEUP_VERSION); return FU_OK; }
    char intro[128];
    snprintf(intro, sizeof intro, "faceup %s: identity- and attribute-preserving face thumbnail upscaling", FACEUP_VERSION);
    return subcommand_run("", intro, commands, N_COMMANDS, argc - 1, argv + 1);
}

/* Strict command-line flag parsing shared by all subcommands: every flag is declared with its
 * type; unknown flags, missing values and malformed or out-of-range numbers are errors. */
#ifndef FU_CLI_ARGS_H
#define FU_CLI_ARGS_H

typedef enum { ARG_FLAG, ARG_INT, ARG_FLOAT, ARG_STRING } arg_type;

typedef struct arg_spec {
    const char *name;      /* "--steps" */
    arg_type type;
    void *value;           /* int*, int*, float*, const char** */
    double min, max;       /* inclusive range for numbers */
    const char *help;
} arg_spec;

/* Parses argv[0..argc) against specs (terminated by a zero entry); positional arguments are
 * collected in order into pos (capacity max_pos). Returns the number of positionals, or -1
 * after printing "faceup CMD: <problem>" to stderr. "--help" prints usage and returns -2. */
int args_parse(const char *cmd, const char *usage, const arg_spec *specs, int argc, char **argv,
               char **pos, int max_pos);
void args_usage(const char *cmd, const char *usage, const arg_spec *specs);

/* The exit status (README's table) of a status code; codes outside it count as internal errors. */
int exit_status(int rc);
/* The worse of two exit statuses (0 < 1 < 2 < 3): a run over several files exits with its worst. */
int exit_worst(int a, int b);

#endif

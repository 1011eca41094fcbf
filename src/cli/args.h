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
 * collected in order into pos (capacity max_pos). "--flag value" and "--flag=value" are the same.
 * Returns the number of positionals, or -1 after printing "faceup CMD: <problem>" to stderr (an
 * unknown flag names the nearest known one). "--help" or "-h" prints usage to stdout and returns -2
 * (the command then exits 0). */
int args_parse(const char *cmd, const char *usage, const arg_spec *specs, int argc, char **argv,
               char **pos, int max_pos);
void args_usage(const char *cmd, const char *usage, const arg_spec *specs);

/* The name among names[0..n) closest to word by edit distance, or NULL when none is close
 * enough to be a likely typo. */
const char *args_nearest(const char *word, const char *const *names, int n);

/* A command with subcommands (faceup, faceup train, faceup eval, faceup model). */
typedef struct subcommand {
    const char *name, *summary;
    int (*run)(int argc, char **argv);
} subcommand;

/* Runs the subcommand named by argv[0]. "--help", "-h" or "help" list the subcommands on stdout
 * (exit 0); "help NAME" is "NAME --help"; nothing or an unknown name is exit 2 with one line
 * (naming the nearest subcommand). group is "train", "eval", ... or "" for faceup itself. */
int subcommand_run(const char *group, const char *intro, const subcommand *subs, int n, int argc, char **argv);

/* The exit status (README's table) of a status code; codes outside it count as internal errors. */
int exit_status(int rc);
/* The worse of two exit statuses (0 < 1 < 2 < 3): a run over several files exits with its worst. */
int exit_worst(int a, int b);

#endif

/* Subcommands of the `faceup` tool. Each returns a process exit status (enum fu_status). */
#ifndef FU_CLI_COMMANDS_H
#define FU_CLI_COMMANDS_H

int cmd_selfcheck(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_train_extractor(int argc, char **argv);  /* faceup train extractor */
int cmd_align(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_train_heads(int argc, char **argv);      /* faceup train heads */
int cmd_train_finetune_data(int argc, char **argv);  /* faceup train finetune-data */
int cmd_train_finetune(int argc, char **argv);   /* faceup train finetune */
int cmd_train_race_judge(int argc, char **argv); /* faceup train race-judge */
int cmd_train_thumb_race(int argc, char **argv); /* faceup train thumb-race */
int cmd_train_race_offsets(int argc, char **argv);  /* faceup train race-offsets */
int cmd_eval(int argc, char **argv);
int cmd_eval_lfw(int argc, char **argv);       /* faceup eval lfw */
int cmd_eval_upscale(int argc, char **argv);   /* faceup eval upscale */
int cmd_eval_extractor(int argc, char **argv); /* faceup eval extractor */
int cmd_embed(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_upscale(int argc, char **argv);

#endif

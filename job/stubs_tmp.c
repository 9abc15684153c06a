/* temporary: replaced by run.c, sample.c and upload.c */
#include "commands.h"
int cmd_run(int argc, char **argv) { (void)argc; (void)argv; return 70; }
int cmd_sample(int argc, char **argv) { (void)argc; (void)argv; return 70; }
int cmd_upload(int argc, char **argv) { (void)argc; (void)argv; return 70; }

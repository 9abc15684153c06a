/* graph.c: placeholder until pull lands. */
#include <stdio.h>
#include "commands.h"
#include "status.h"
int cmd_pull(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "acbill pull: not yet\n");
    return AC_EUSAGE;
}

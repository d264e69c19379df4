/* cmd_restore.c: `restore --from FILE` and `recover` (stubs replaced below). */
#include "supervisor.h"
int cmd_restore(int argc, char **argv) { return 1; }
int cmd_recover(int argc, char **argv) { return 1; }

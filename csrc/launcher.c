/* Native front door of the pytender commands (pytender, pytender-hvt,
 * solo5-hvt).  A #! script cannot start inside urunc's monitor root, and
 * before an interpreter has installed its handlers a SIGTERM kills the
 * process without the solo5-hvt message.  So: block SIGINT/SIGTERM (the
 * mask survives execve; tender/cli.py unblocks once its handler is in
 * place), then exec the interpreter that sits beside this file:
 *
 *   DIR/python             a virtual environment's bin/ (site on)
 *   DIR/python + DIR/lib   `pytender install-monitor`: isolated, no site,
 *                          no bytecode writes, DIR/lib first on sys.path
 *
 * and, when there is no DIR/python, PYTENDER_PYTHON (compiled in by setup.py:
 * the interpreter that built it, for a `pip install --user` bin/).
 *
 * Policy stays in Python; this file only finds the interpreter. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PYTENDER_PYTHON
#define PYTENDER_PYTHON ""
#endif

static const char boot[] =
    "import sys\n"
    "d = sys.argv.pop(1)\n"
    "if d: sys.path.insert(0, d)\n"
    "ign = sys.argv.pop(1) == 'ign'\n"
    "from tender.cli import launched\n"
    "launched(ign)\n";

int main(int argc, char **argv)
{
    sigset_t stop;
    char dir[PATH_MAX], python[PATH_MAX + 16], lib[PATH_MAX + 16];
    struct stat st;
    struct sigaction pipe_sa;
    ssize_t n;
    char *slash;
    const char *prog = argc > 0 ? argv[0] : "solo5-hvt";
    int i, k = 0, monitor;
    char **args;

    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    /* Python always starts with SIGPIPE ignored; tell it what we inherited
     * (Albatross passes it ignored, a shell default). */
    sigaction(SIGPIPE, NULL, &pipe_sa);

    n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (n <= 0 || (slash = memrchr(dir, '/', (size_t)n)) == NULL) {
        fprintf(stderr, "%s: cannot find my own location (is /proc mounted?)\n", prog);
        return 1;
    }
    *slash = '\0';
    snprintf(python, sizeof(python), "%s/python", dir);
    if (access(python, X_OK) != 0 && PYTENDER_PYTHON[0] != '\0')
        snprintf(python, sizeof(python), "%s", PYTENDER_PYTHON);
    snprintf(lib, sizeof(lib), "%s/lib/tender", dir);
    monitor = stat(lib, &st) == 0 && S_ISDIR(st.st_mode);
    lib[strlen(lib) - strlen("/tender")] = '\0';

    args = calloc((size_t)argc + 8, sizeof(*args));
    if (args == NULL)
        return 1;
    args[k++] = python;
    args[k++] = monitor ? "-IBS" : "-I";
    args[k++] = "-c";
    args[k++] = (char *)boot;
    args[k++] = monitor ? lib : "";
    args[k++] = pipe_sa.sa_handler == SIG_IGN ? "ign" : "dfl";
    args[k++] = (char *)prog;
    for (i = 1; i < argc; i++)
        args[k++] = argv[i];
    execv(python, args);
    fprintf(stderr, "%s: cannot start %s: %s\n", prog, python, strerror(errno));
    return 1;
}

/* Native front door of the pytender commands (pytender, pytender-hvt,
 * solo5-hvt).  A #! script cannot start inside urunc's monitor root, and
 * before an interpreter has installed its handlers a SIGTERM kills the
 * process without the solo5-hvt message.  So: block SIGINT/SIGTERM (the
 * mask survives execve; tender/cli.py unblocks once its handler is in
 * place), then exec the interpreter that sits beside this file:
 *
 *   DIR/python             a virtual environment's bin/
 *   DIR/python + DIR/lib   `pytender install-monitor`: isolated, no site,
 *                          no bytecode writes, DIR/lib first on sys.path
 *
 * and, when there is no DIR/python, PYTENDER_PYTHON (compiled in by setup.py:
 * the interpreter that built it, for a `pip install --user` bin/).
 *
 * Outside a monitor root the interpreter also starts without site (-I -S:
 * site, the .pth files and setuptools' editable finder cost a boot ~4 ms
 * and pathlib, urllib, ipaddress): BOOT appends to sys.path, after the
 * standard library as site would, the directories where this install may
 * keep its packages (PYTENDER_SRC, the
 * source tree, compiled in for an editable install; DIR/../lib/pythonX.Y/
 * site-packages; DIR/.. for `pip install --target`), and tender/_launch.py
 * runs site after all when they do not hold everything the tender imports.
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
#ifndef PYTENDER_SRC
#define PYTENDER_SRC ""
#endif

/* argv[1:5]: monitor lib dir or "", this file's directory, PYTENDER_SRC,
 * the inherited SIGPIPE disposition. The cyclic collector stays off until
 * the guest runs (tender/cli.py _resume_gc). */
static const char boot[] =
    "import gc\n"
    "gc.disable()\n"
    "import sys\n"
    "lib, here, src, pipe = sys.argv[1:5]\n"
    "del sys.argv[1:5]\n"
    "if lib:\n"
    "    sys.path.insert(0, lib)\n"
    "else:\n"
    "    top = here.rpartition('/')[0]\n"
    "    own = [p for p in (src, '%s/lib/python%d.%d/site-packages' % (top, *sys.version_info[:2]),\n"
    "                       top) if p]\n"
    "    sys.path += own\n"
    "    try:\n"
    "        from tender._launch import settle\n"
    "    except ImportError:\n"
    "        del sys.path[-len(own):]\n"
    "        import site\n"
    "        site.main()\n"
    "    else:\n"
    "        settle(own, src)\n"
    "from tender.cli import launched\n"
    "launched(pipe == 'ign')\n";

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

    args = calloc((size_t)argc + 10, sizeof(*args));
    if (args == NULL)
        return 1;
    args[k++] = python;
    args[k++] = monitor ? "-IBS" : "-IS";
    args[k++] = "-c";
    args[k++] = (char *)boot;
    args[k++] = monitor ? lib : "";
    args[k++] = dir;
    args[k++] = PYTENDER_SRC;
    args[k++] = pipe_sa.sa_handler == SIG_IGN ? "ign" : "dfl";
    args[k++] = (char *)prog;
    for (i = 1; i < argc; i++)
        args[k++] = argv[i];
    execv(python, args);
    fprintf(stderr, "%s: cannot start %s: %s\n", prog, python, strerror(errno));
    return 1;
}

#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

static int child(void *arg) { (void)arg; return 0; }  /* shares the table, exits at once */

int main(void) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return 1;
    int file = open("after.txt", O_CREAT | O_TRUNC | O_WRONLY, 0644);
    char *stack = malloc(65536);
    pid_t pid = clone(child, stack + 65536, CLONE_FILES | SIGCHLD, NULL);
    if (pid < 0) return 2;
    waitpid(pid, NULL, 0);
    /* the table is still the parent's: these count for the socket and the file */
    if (write(pair[0], "hello", 5) != 5) return 3;
    char buf[8];
    if (read(pair[1], buf, sizeof buf) != 5) return 4;
    if (write(file, "12345678", 8) != 8) return 5;
    return 0;
}

/* forkexec: two threads that each write a file, then a fork whose child execs `echo`.
 * Recorded by record.py; FACTS.md says what the trace of it must yield. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *worker(void *arg) {
    const char *name = arg;
    FILE *out = fopen(name, "w");
    if (out == NULL) return NULL;
    fputs("written by a thread\n", out); /* 20 bytes */
    fclose(out);
    return NULL;
}

int main(void) {
    pthread_t first, second;
    pthread_create(&first, NULL, worker, "thread-1.txt");
    pthread_create(&second, NULL, worker, "thread-2.txt");
    pthread_join(first, NULL);
    pthread_join(second, NULL);
    pid_t child = fork();
    if (child == 0) {
        char *argv[] = {"echo", "hello from", "the child", NULL};
        execvp("echo", argv);
        _exit(126);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

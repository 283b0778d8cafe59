/* The pod sandbox's process (the "pause" container) for scripts/cluster.sh: holds the
 * pod's namespaces, reaps zombies (it is PID 1 of the pod when the PID namespace is
 * shared) and exits on SIGINT/SIGTERM. No image can be pulled here, so this is built
 * static and put alone in a FROM-scratch image. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { _exit(128 + sig); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && argv[1][0] == '-' && argv[1][1] == 'v') {
    puts("goodsmall-pause 1");
    return 0;
  }
  if (getpid() != 1) fprintf(stderr, "pause: not PID 1, still pausing\n");
  struct sigaction term = {.sa_handler = stop}, child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  sigaction(SIGINT, &term, NULL);
  sigaction(SIGTERM, &term, NULL);
  sigaction(SIGCHLD, &child, NULL);
  for (;;) pause();
}

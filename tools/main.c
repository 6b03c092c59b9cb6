/*
 * pinheap: command-line tool of the pinheap library.
 *
 *   pinheap demo [options]        compare the extent policies of a FIXED heap
 *   pinheap record -- CMD ARGS    record a program's allocations as a trace
 *   pinheap replay TRACE          replay a trace through the library
 *   pinheap size TRACE            the smallest FIXED heap that completes it
 *   pinheap offline TRACE...      the heap a placement knowing every lifetime needs
 *   pinheap gen KIND              a synthetic workload as a trace
 *   pinheap convert IN OUT        a trace from binary to text or back
 *   pinheap info TRACE            what a trace holds
 *   pinheap help [command]        print usage
 *
 * Each subcommand lives in its own file; this file only dispatches.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "pinheap.h"

typedef struct command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
  void (*usage)(FILE *out);
} command;

static const command commands[] = {
    {"demo", "compare the extent policies of a FIXED heap on a few scenarios", demo_main, demo_usage},
    {"record", "run a program and record its allocations as a trace", record_main, record_usage},
    {"replay", "replay a trace through the library, with stats and pictures", replay_main, replay_usage},
    {"size", "the smallest FIXED heap that completes a trace, per policy", size_main, size_usage},
    {"offline", "the heap a placement that knows every lifetime needs", offline_main, offline_usage},
    {"gen", "write a synthetic workload as a trace", gen_main, gen_usage},
    {"convert", "convert a trace between its binary and text forms", convert_main, convert_usage},
    {"info", "check a trace and say what it holds", info_main, info_usage},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fprintf(out,
          "pinheap %d.%d.%d: tool of the pinheap allocator\n"
          "\n"
          "usage: pinheap <command> [options]\n"
          "\n"
          "commands:\n",
          PINHEAP_VERSION_MAJOR, PINHEAP_VERSION_MINOR, PINHEAP_VERSION_PATCH);
  for (size_t i = 0; i < N_COMMANDS; i++)
    fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "  %-8s %s\n", "help", "print this text, or `help <command>` for one command");
}

static const command *find_command(const char *name) {
  for (size_t i = 0; i < N_COMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static int help_main(int argc, char **argv) {
  if (argc < 2) {
    usage(stdout);
    return 0;
  }
  const command *cmd = find_command(argv[1]);
  if (cmd == NULL) {
    fprintf(stderr, "pinheap: help: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
  }
  cmd->usage(stdout);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *name = argv[1];
  if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
    return help_main(argc - 1, argv + 1);
  if (strcmp(name, "--version") == 0) {
    printf("pinheap %d.%d.%d\n", PINHEAP_VERSION_MAJOR, PINHEAP_VERSION_MINOR,
           PINHEAP_VERSION_PATCH);
    return 0;
  }
  const command *cmd = find_command(name);
  if (cmd == NULL) {
    fprintf(stderr, "pinheap: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
  }
  return cmd->run(argc - 1, argv + 1);
}

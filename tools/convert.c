/*
 * `pinheap convert`: a trace from the binary form to the text form or back.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"

void convert_usage(FILE *out) {
  fprintf(out,
          "usage: pinheap convert [--text | --binary] IN OUT\n"
          "\n"
          "Reads the trace IN (binary or text), checking every record, and writes\n"
          "it to OUT (\"-\": standard output) in the other form, or in the form\n"
          "asked. A binary trace written from its own text form is the same, byte\n"
          "for byte. A trace that cannot be read is reported with the offset of\n"
          "the first bad record, and OUT keeps what came before it.\n"
          "\n"
          "  --text      write the text form\n"
          "  --binary    write the binary form\n"
          "  -h, --help  print this text\n");
}

int convert_main(int argc, char **argv) {
  const char *in = NULL, *outpath = NULL;
  int form = -1; /* 1 text, 0 binary, -1 the other one */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--text") == 0) {
      form = 1;
    } else if (strcmp(argv[i], "--binary") == 0) {
      form = 0;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      convert_usage(stdout);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return cli_usage_error("convert", convert_usage, "unknown option '%s'", argv[i]);
    } else if (!in) {
      in = argv[i];
    } else if (!outpath) {
      outpath = argv[i];
    } else {
      return cli_usage_error("convert", convert_usage, "too many arguments ('%s')", argv[i]);
    }
  }
  if (!in || !outpath) return cli_usage_error("convert", convert_usage, "give IN and OUT");
  FILE *f;
  trace_reader r;
  if (cli_open_trace("convert", in, &f, &r) != 0) return 2;
  bool text = form < 0 ? !r.text : form == 1;
  bool to_stdout = strcmp(outpath, "-") == 0;
  if (to_stdout && !text && isatty(STDOUT_FILENO)) {
    cli_close_trace(f, &r);
    return cli_usage_error("convert", convert_usage, "a binary trace is not written to a terminal");
  }
  FILE *out = to_stdout ? stdout : fopen(outpath, "wb");
  if (!out) {
    fprintf(stderr, "pinheap convert: cannot write %s: %s\n", outpath, strerror(errno));
    cli_close_trace(f, &r);
    return 2;
  }
  trace_writer w;
  trace_event ev;
  int got = 0, rc = trace_writer_open(&w, out, text);
  while (rc == 0 && (got = trace_reader_next(&r, &ev)) == 1) rc = trace_writer_put(&w, &ev);
  if (rc == 0 && got < 0) {
    fprintf(stderr, "pinheap convert: %s\n", r.error);
    rc = 2;
  } else if (rc == 0 && r.ended) {
    rc = trace_writer_end(&w);
  }
  if (rc == 0 && fflush(out) != 0) rc = -1;
  if (!to_stdout && fclose(out) != 0 && rc == 0) rc = -1;
  if (rc < 0) fprintf(stderr, "pinheap convert: writing %s failed: %s\n", outpath, strerror(errno));
  cli_close_trace(f, &r);
  return rc ? 2 : 0;
}

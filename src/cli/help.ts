// Usage text for each command; `uwrx <command> --help` prints the matching entry.

export const mainHelp = `uwrx: run a command tree in a sandbox and keep a complete record of it

Usage:
  uwrx run [options] -- <command> [args...]   supervise a command
  uwrx inspect files|procs|output|events|net <attempt> [options]
  uwrx check <attempt>                         validate an attempt's record
  uwrx ui <attempt>                            interactive terminal UI over an attempt
  uwrx test <test>|all|--list                  run bundled scenario tests on this host

Options:
  -h, --help      show help (also after a command: uwrx run --help)
  -V, --version   show the version

<attempt> is an attempt directory, e.g. build/0/0 (step 0, attempt 0).
`;

export const runHelp = `Usage: uwrx run [options] -- <command> [args...]

Runs <command> in a sandbox and records it under <build>/<step>/<attempt>/.
uwrx exits with the command's exit status (128+N when it was killed by signal N).

Options:
  --build <path>    build directory (default ./build)
  --step <name>     step name; default: largest numeric step + 10, or 0 when none exist.
                    An existing step gets a new attempt. Not allowed with --replay.
  --parent <path>   parent attempt (repeatable, nearest first); its files form lower
                    layers. Default: the latest attempt of the nearest earlier numeric
                    step (a replay keeps the replayed attempt's parents)
  --no-parent       no parent at all
  --replay <path>   attempt directory to replay; the command defaults to the replayed one
  --net             the sandbox reaches the network through uwrx's DNS and proxy, which
                    record every HTTP(S) exchange under net/ (default for fresh runs)
  --no-net          nothing outside is reachable and no name resolves (default with
                    --replay, which answers only from the replayed record)
  --dns-map <NAME=IP[,NAME=IP...]>
                    resolve NAME to IP upstream instead of asking the host's resolver
                    (repeatable)
  --upstream-ca <file>
                    also trust this PEM CA for upstream servers (repeatable)
  --time <mode>     clocks inside: advancing (default: each process's wall clock starts
                    at the attempt's T0 + (parents + 1) s, the time its own files carry,
                    and moves 1 ms per read), frozen (always that time) or real (the
                    host's clocks). A replay keeps the replayed mode and T0
  --tmp <path>      where the run's temporary directory is created
                    (default: <build>/.tmp, on the build's filesystem)
  -q, --quiet       no summary line at the end
  --dry-run         print the attempt and the sandbox plan (every mount, in order)
                    without running anything
  --fast-path       record reads inside each dynamically linked process (faster;
                    see docs/record.md, "Read accesses")
  -h, --help        show this help

Environment:
  UWRX_DEBUG_TIMING=1   print the time of each phase of the run on stderr
`;

export const inspectHelp = `Usage: uwrx inspect <what> <attempt> [options]

What:
  files     files written in the attempt (--who: with the processes that wrote them;
            --by-pid N: the files as process N saw them; --reads: every access)
  procs     the process table
  output    stdout/stderr; "output <attempt> <pid>" prints exactly what that process wrote
  events    every recorded event in order
  net       the domains and the HTTP(S) exchanges of the network record (net/)

Options:
  --who             with files: list the writers of each file
  --by-pid <pid>    with files: resolve as seen by logical pid <pid>
  --reads           with files: every access of every process (pid, op, path,
                    executable, count), ops read, missing, stat, readdir, readlink,
                    exec, write, delete, rename_from, rename_to, mkdir, rmdir, chmod,
                    chown
  --format <fmt>    text (default) or json
  -h, --help        show this help
`;

export const checkHelp = `Usage: uwrx check <attempt>

Validates an attempt directory: the perfetto trace decodes and is ordered, every process
it references exists, files.meta agrees with files/, and the run itself counted no
problems (its status). Prints one problem per line and exits 1 when there are problems,
0 otherwise.
`;

export const uiHelp = `Usage: uwrx ui <attempt>

Interactive terminal UI over an attempt directory: processes, files and output.
`;

export const testHelp = `Usage: uwrx test <test> [options]
       uwrx test all
       uwrx test --list

Runs uwrx's bundled scenario tests on this host and reports each as ok or failed.

Options:
  --list            list the scenarios
  --keep            keep the scenario's build directory and print its path
  -h, --help        show this help
`;

export const commandHelp: Record<string, string> = {
  run: runHelp,
  inspect: inspectHelp,
  check: checkHelp,
  ui: uiHelp,
  test: testHelp,
};

// Usage text for each command; `uwrx <command> --help` prints the matching entry.

export const mainHelp = `uwrx: run a command tree in a sandbox and keep a complete record of it

Usage:
  uwrx run [options] -- <command> [args...]   supervise a command
  uwrx inspect files|procs|output|events|net|rebuild <attempt> [options]
  uwrx check [--repair] <attempt>              validate an attempt; rebuild what a killed run left
  uwrx ui <attempt>                            interactive terminal UI over an attempt
  uwrx test <test>|all|--list                  run bundled scenario tests on this host

Options:
  -h, --help      show help (also after a command: uwrx run --help)
  -V, --version   show the version

<attempt> is an attempt directory, e.g. build/0/0 (step 0, attempt 0).
`;

export const runHelp = `Usage: uwrx run [options] -- <command> [args...]

Runs <command> in a sandbox and records it under <build>/<step>/<attempt>/.
uwrx ends as the command did: with its exit status, or killed by the same signal.

Options:
  --build <path>    build directory (default ./build)
  --step <name>     step name; default: largest numeric step + 10, or 0 when none exist.
                    An existing step gets a new attempt. Not allowed with --replay.
  --parent <path>   parent attempt (repeatable, nearest first); its files form lower
                    layers. Default: the latest complete attempt of the nearest earlier
                    numeric step that has one, with a warning when a nearer step has
                    none (a replay keeps the replayed attempt's parents)
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
  --allow-push      let git pushes through to the real server (otherwise refused with
                    a message the git client shows)
  --time <mode>     clocks inside: advancing (default: each process's wall clock starts
                    at the attempt's T0 + (parents + 1) s, the time its own files carry,
                    and moves 10 us per read and by the time each timed wait
                    waited), frozen (always that time) or real (the host's
                    clocks). A replay keeps the replayed mode and T0
  --skippable <name>, --not-skippable <name>
                    add a program to / remove one from the partial rebuild list
                    (cc gcc g++ c++ clang clang++ cc1 cc1plus gfortran f951 collect2
                    as ld ld.* ar ranlib): on --replay, a listed process whose inputs
                    did not change is skipped and its files, output and exit status
                    come from the record (repeatable; a replay keeps the replayed list)
  --aslr            keep address-space randomization in the command tree (default
                    off: glibc's temp names mix in stack addresses, so they would
                    differ on replay). A replay keeps the replayed choice
  --linger <s>      once the command's main process ended, wait at most this many
                    seconds for the processes it left running (daemons), then
                    terminate them (SIGTERM, SIGKILL after 3 s) and say so in the
                    status and the summary (default 2)
  --tmp <path>      an existing directory where the run's temporary directory is
                    created (default: <build>/.tmp, on the build's filesystem; on
                    another filesystem, finishing copies instead of renaming)
  -q, --quiet       no summary line at the end, and no progress in the terminal's
                    title (shown only when stderr is a terminal)
  --dry-run         print the attempt and the sandbox plan (every mount, in order)
                    without running anything
  --no-fast-path    record every file call through uwrx-init's notifications
                    instead of inside each dynamically linked process (slower; the
                    default --fast-path is described in docs/record.md, "Read
                    accesses")
  -h, --help        show this help

Environment:
  UWRX_DEBUG_TIMING=1   print the time of each phase of the run on stderr
  UWRX_DEBUG_MERGER_INPUT=FILE
                        also write the trace merger's input to FILE, to merge the
                        same records again (src/record/merger-input.ts)
  UWRX_NATIVE_ACCESSES=0
                        merge and write the trace's records in TypeScript instead of
                        native code (the same bytes, slower; for comparison)
`;

export const inspectHelp = `Usage: uwrx inspect <what> <attempt> [options]

What:
  files     files written in the attempt (--who: with the processes that wrote them;
            --by-pid N: the files as process N saw them; --reads: every access)
  procs     the process table (--tree: as a tree)
  output    stdout/stderr; "output <attempt> <pid>" prints exactly what that process wrote
  events    every recorded event in order
  net       the domains and the HTTP(S) exchanges of the network record (net/)
  rebuild   the processes on the partial rebuild list: pid, skipped or ran, executable,
            why (json: [{pid, exe, decision, reason}])

Options:
  --who             with files: list the writers of each file
  --by-pid <pid>    with files: resolve as seen by logical pid <pid>
  --reads           with files: every access of every process (pid, op, path,
                    executable, count), ops read, missing, stat, readdir, readlink,
                    exec, write, delete, rename_from, rename_to, mkdir, rmdir, chmod,
                    chown
  --tree            with procs: children under their parent (json: nested "children")
  --since <s>       with files, events: from <s> seconds after the first process started
  --until <s>       with files, events: up to <s> seconds after it (times come from the
                    trace's events)
  --path <path>     with files, events: only <path> and what is below it (a file or a
                    directory; an absolute path as the sandbox saw it)
  --format <fmt>    text (default) or json
  -h, --help        show this help

A closed pipe (uwrx inspect ... | head) ends the command quietly.
`;

export const checkHelp = `Usage: uwrx check <attempt>
       uwrx check --repair [--tmp <path>] <attempt>

Validates an attempt directory: the perfetto trace decodes and is ordered, every process
it references exists, files.meta agrees with files/, the run finished it (a status, no
trace buffers left behind). Prints one problem per line and exits 1 when there are
problems, 0 otherwise; a repaired attempt also lists what it lost.

--repair rebuilds what it can of an attempt whose uwrx was killed: the trace from what
perfetto already holds and the buffers left in the run's temporary directory, procs.tsv
from the process events, and a status marking the attempt incomplete. It prints what it
recovered and what is lost (the events of processes already collected but not yet
written, the file store, which stays in the temporary directory).

Options:
  --repair          rebuild what a killed run left
  --tmp <path>      with --repair: the killed run's --tmp (default <build>/.tmp)
  -h, --help        show this help
`;

export const uiHelp = `Usage: uwrx ui <attempt>

Interactive terminal UI over an attempt directory. Left: the process tree. Right: the
selected process: command, cwd, exit status or signal, duration; the files it wrote and
read with their versions; its output; environment, network and rebuild decisions when
the record has them.

Keys: up/down or k/j move, right/left or l/h expand/collapse, Tab switches the details,
/ searches commands, paths and output (n/N: next/previous), f shows only failed
processes, ? lists every key, q quits.
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

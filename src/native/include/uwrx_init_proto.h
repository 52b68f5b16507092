/* Messages between Node and uwrx-init (mirrors src/protocol/init-messages.ts; a test
 * keeps the two in step). Transport: the socket at fd UWRX_INIT_FD; frames are a u32
 * little-endian length then a msgpack Envelope map {type, id?, re?, error?, body?}.
 * Either side may ask: a request carries `id` (the asker's own numbering), its answer
 * `re` = that id and `body` or `error`; a message with neither is a notification. A
 * message of a type the receiver does not know is an error. */
#ifndef UWRX_INIT_PROTO_H
#define UWRX_INIT_PROTO_H

/* The socket Node hands to uwrx-init (stdio slot 3; the slot `--control-fd N` names when
 * descriptors passed to the command take slots from 3). */
#define UWRX_INIT_FD 3
/* The SOCK_SEQPACKET socket uwrx-init hands network sockets over (stdio slot 4, or the
 * one `--net-fd M` names; only when the network actors run): each message is a u32 id
 * with one fd (SCM_RIGHTS). */
#define UWRX_INIT_NET_FD 4
/* Largest frame either side sends or accepts. */
#define UWRX_INIT_MAX_FRAME (64u * 1024 * 1024)

/* Node -> uwrx-init */
#define MSG_PLAN "plan"           /* body: the plan (see plan.c / src/sandbox/plan.ts) */
#define MSG_TERMINATE "terminate" /* body: {graceMs} SIGTERM to the tree, SIGKILL after grace */

/* Node -> uwrx-init requests */
#define MSG_STATS "stats"         /* -> {deferred: {open, answered, dropped}, problems} */

/* uwrx-init -> Node requests */
#define MSG_TEST_DEFER "test.defer" /* body: {pid, ms, value} -> {value}: the deferral test */
#define MSG_REBUILD_EXEC "rebuild.exec" /* body: {pid, seed, exe, argv, cwd, env} -> {skip, status, output, reason} */

/* uwrx-init -> Node */
#define MSG_STARTED "started" /* body: {time} the command was forked */
#define MSG_SPAWN "spawn"     /* body: {pid, ppid, nspid, time} first sight of a process */
#define MSG_EXEC "exec"       /* body: {pid, path, argv, cwd, time} a successful exec */
#define MSG_EXIT "exit"       /* body: {pid, code, signal, time} code or signal is nil */
/* body: [entry...], the process notices held together, in order; an entry is an array:
 * [PROC_SPAWN, pid, ppid, ordinal, nspid, time], [PROC_EXEC, pid, path, argv, cwd, time],
 * [PROC_EXIT, pid, code, signal, time, clock]: the bodies of spawn, exec and exit by
 * position (clock: [now, cpu, children cpu] in ns where it ended, nil with real time) */
#define MSG_PROCS "procs"
#define PROC_SPAWN 0
#define PROC_EXEC 1
#define PROC_EXIT 2
#define MSG_DONE "done"       /* body: {status, code, signal, time, deferred} every process ended */
#define MSG_FAILED "failed"   /* body: {message (one line), step, op, path, errno} */
#define MSG_NET_FD "netfd"    /* body: {id, kind (udp|tcp|listen), address, port} an fd on UWRX_INIT_NET_FD */
#define MSG_NET_CONNECT "netconnect" /* body: {pid, address, port, sourcePort, time} */
#define MSG_PROBLEM "problem" /* body: {kind, count, detail?} counted since the last report */

/* Run-time problems (MSG_PROBLEM kinds): the first of a kind is reported at once, the
 * rest counted and reported before MSG_DONE. */
#define PROBLEM_NAME_VERSION_LOST "lost-version"       /* a file version could not be kept */
#define PROBLEM_NAME_TRACE_BUFFER "trace-buffer"       /* a trace buffer failed: events lost */
#define PROBLEM_NAME_NO_MEMORY "allocation"            /* an allocation failed: a record lost */
#define PROBLEM_NAME_REQUEST_TIMEOUT "request-timeout" /* Node did not answer in time */
#define PROBLEM_NAME_BAD_MESSAGE "bad-message"         /* Node sent an unknown or malformed message */

/* Plan step operations, executed in order by pid 1 of the sandbox. */
#define OP_FILES "files"             /* open the file record (plan key "files") */
#define OP_TRACES "traces"           /* path: the traces directory, kept open */
#define OP_REPLAYED "replayed"       /* path: the replayed attempt, kept open (skipped outputs) */
#define OP_MOUNT "mount"             /* source, target, fstype, flags, data */
#define OP_LAZY "lazy"               /* name (host directory), target, path (the same inside),
                                     * source, fstype, flags, data: a read-only bind of name
                                     * at target, the overlay put over it at path on the
                                     * first change below (lazy.c) */
#define OP_MKDIR "mkdir"             /* path, mode */
#define OP_FILE "file"               /* path, mode: an empty file (bind mount target) */
#define OP_SYMLINK "symlink"         /* target (link text), path */
#define OP_TIMES "times"             /* source (a host path), path, flags (1: not following a
                                     * symlink): give path the times source has */
#define OP_READONLY "readonly"       /* path: make an existing mount read-only */
#define OP_PIVOT "pivot"             /* path: pivot_root there, detach the old root */
#define OP_LOOPBACK "loopback"       /* bring lo up */
#define OP_HOSTNAME "hostname"       /* name */
#define OP_DOMAINNAME "domainname"   /* name */
#define OP_DEVRANDOM "devrandom"     /* path, flags (1 = /dev/random): deterministic stream file */
#define OP_NETADDR "netaddr"         /* path (address), flags (prefix length): add to lo */
#define OP_NETROUTE "netroute"       /* path (IPv6 prefix), flags (length): local route on lo */
#define OP_NETSOCKET "netsocket"     /* name (udp|tcp), path (address), flags (port): hand to Node */
#define OP_PIDMAX "pidmax"           /* path (the new pid namespace's /proc), flags: its pid_max */
#define OP_PTY "pty"                 /* source (host pty), path (<devpts>/<n>): keep the name */

#endif

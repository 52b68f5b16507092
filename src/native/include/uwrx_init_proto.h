/* Messages between Node and uwrx-init (mirrors src/protocol/init-messages.ts).
 * Transport: the socket at fd UWRX_INIT_FD; frames are a u32 little-endian length then
 * a msgpack Envelope map {type, id?, re?, error?, body?}. */
#ifndef UWRX_INIT_PROTO_H
#define UWRX_INIT_PROTO_H

/* The socket Node hands to uwrx-init (stdio slot 3). */
#define UWRX_INIT_FD 3
/* The SOCK_SEQPACKET socket uwrx-init hands network sockets over (stdio slot 4, only
 * when the network actors run): each message is a u32 id with one fd (SCM_RIGHTS). */
#define UWRX_INIT_NET_FD 4
/* Largest frame either side sends or accepts. */
#define UWRX_INIT_MAX_FRAME (64u * 1024 * 1024)

/* Node -> uwrx-init */
#define MSG_PLAN "plan"           /* body: the plan (see plan.c / src/sandbox/plan.ts) */
#define MSG_TERMINATE "terminate" /* body: {graceMs} SIGTERM to the tree, SIGKILL after grace */

/* uwrx-init -> Node */
#define MSG_STARTED "started" /* body: {time} the command was forked */
#define MSG_SPAWN "spawn"     /* body: {pid, ppid, nspid, time} first sight of a process */
#define MSG_EXEC "exec"       /* body: {pid, path, argv, cwd, time} a successful exec */
#define MSG_EXIT "exit"       /* body: {pid, code, signal, time} code or signal is nil */
#define MSG_DONE "done"       /* body: {status, code, signal, time} every process ended */
#define MSG_FAILED "failed"   /* error: one line; body: {step, op, path, errno} */
#define MSG_NET_FD "netfd"    /* body: {id, kind (udp|tcp|listen), address, port} an fd on UWRX_INIT_NET_FD */
#define MSG_NET_CONNECT "netconnect" /* body: {pid, address, port, sourcePort, time} */

/* Plan step operations, executed in order by pid 1 of the sandbox. */
#define OP_MOUNT "mount"             /* source, target, fstype, flags, data */
#define OP_MKDIR "mkdir"             /* path, mode */
#define OP_FILE "file"               /* path, mode: an empty file (bind mount target) */
#define OP_SYMLINK "symlink"         /* target (link text), path */
#define OP_READONLY "readonly"       /* path: make an existing mount read-only */
#define OP_PIVOT "pivot"             /* path: pivot_root there, detach the old root */
#define OP_LOOPBACK "loopback"       /* bring lo up */
#define OP_HOSTNAME "hostname"       /* name */
#define OP_DOMAINNAME "domainname"   /* name */
#define OP_DEVRANDOM "devrandom"     /* path, flags (1 = /dev/random): deterministic stream file */
#define OP_NETADDR "netaddr"         /* path (address), flags (prefix length): add to lo */
#define OP_NETROUTE "netroute"       /* path (IPv6 prefix), flags (length): local route on lo */
#define OP_NETSOCKET "netsocket"     /* name (udp|tcp), path (address), flags (port): hand to Node */
#define OP_PTY "pty"                 /* source (host pty), path (<devpts>/<n>): keep the name */

#endif

/* Trace event records: the C mirror of src/protocol/events.ts (the definition).
 * test/trace-schema.test.ts parses this file and compiles it to compare codes, field
 * names, types, offsets and blob lists with the TypeScript schema.
 *
 * A record: struct uwrx_ev_header, the type's fixed struct (padded to 8), then for each
 * blob of the type (UWRX_EV_<NAME>_BLOBS, in order) a uint32_t length and the bytes,
 * then zero padding to a multiple of 8. header.size counts all of it. */
#pragma once
#include <stdint.h>

#define UWRX_EV_HEADER_SIZE 24
#define UWRX_EV_MAX_SIZE 65536
#define UWRX_TRACE_WINDOW_SIZE 1048576
/* A trace buffer file's records start here; the bytes before are the process's
 * in-process recorder region (uwrx_recorder.h), a hole when it records nothing. */
#define UWRX_TRACE_DATA_OFFSET 67108864
#define UWRX_EV_FLAG_TRUNCATED 1
#define UWRX_OUTPUT_FLAG_MORE 1

struct uwrx_ev_header {
  uint32_t size;    /* whole record, multiple of 8; 0 marks the end of written data */
  uint16_t type;    /* UWRX_EV_* */
  uint16_t flags;   /* UWRX_EV_FLAG_* */
  uint32_t pid;     /* logical pid of the process whose file this is */
  uint32_t tid;     /* logical tid of the thread that made the call */
  uint64_t time_ns; /* CLOCK_BOOTTIME */
};

#define UWRX_EV_SPAWN 1
#define UWRX_EV_SPAWN_BLOBS ""
struct uwrx_ev_spawn { uint32_t child; uint32_t thread; uint64_t clone_flags; };

#define UWRX_EV_EXEC 2
#define UWRX_EV_EXEC_BLOBS "path,argv"
struct uwrx_ev_exec { int64_t result; };

#define UWRX_EV_EXIT 3
#define UWRX_EV_EXIT_BLOBS ""
struct uwrx_ev_exit { int32_t status; int32_t signal; };

#define UWRX_EV_OPEN 16
#define UWRX_EV_OPEN_BLOBS "path"
struct uwrx_ev_open { int32_t flags; uint32_t mode; int64_t result; };

#define UWRX_EV_STAT 17
#define UWRX_EV_STAT_BLOBS "path"
struct uwrx_ev_stat { int32_t flags; int64_t result; };

#define UWRX_EV_UNLINK 18
#define UWRX_EV_UNLINK_BLOBS "path"
struct uwrx_ev_unlink { int32_t flags; int64_t result; };

#define UWRX_EV_RENAME 19
#define UWRX_EV_RENAME_BLOBS "from,to"
struct uwrx_ev_rename { int32_t flags; int64_t result; };

#define UWRX_EV_MKDIR 20
#define UWRX_EV_MKDIR_BLOBS "path"
struct uwrx_ev_mkdir { uint32_t mode; int64_t result; };

#define UWRX_EV_RMDIR 21
#define UWRX_EV_RMDIR_BLOBS "path"
struct uwrx_ev_rmdir { int64_t result; };

#define UWRX_EV_CHMOD 22
#define UWRX_EV_CHMOD_BLOBS "path"
struct uwrx_ev_chmod { uint32_t mode; int64_t result; };

#define UWRX_EV_CHOWN 23
#define UWRX_EV_CHOWN_BLOBS "path"
struct uwrx_ev_chown { uint32_t uid; uint32_t gid; int64_t result; };

#define UWRX_EV_TRUNCATE 24
#define UWRX_EV_TRUNCATE_BLOBS "path"
struct uwrx_ev_truncate { int64_t length; int64_t result; };

/* A read access: op is UWRX_ACCESS_* (uwrx_recorder.h); flags the open flags, access
 * mode or AT_* flags of the call; result an fd, length, 0 or -errno; count how many
 * times the process made this access (the in-process recorder counts repeats into the
 * first record; 1 otherwise). */
#define UWRX_EV_ACCESS 25
#define UWRX_EV_ACCESS_BLOBS "path"
struct uwrx_ev_access { uint32_t op; int32_t flags; int64_t result; uint32_t count; };

#define UWRX_EV_CONNECT 32
#define UWRX_EV_CONNECT_BLOBS "addr"
struct uwrx_ev_connect { uint32_t family; uint32_t port; int64_t result; };

#define UWRX_EV_DNS 33
#define UWRX_EV_DNS_BLOBS "name,answers"
struct uwrx_ev_dns { uint32_t qtype; uint32_t rcode; };

#define UWRX_EV_OUTPUT 48
#define UWRX_EV_OUTPUT_BLOBS "data"
/* dest_dev, dest_ino: what fd named when written (its stat): the same pipe, terminal or
 * file as another process's stdout, or not (docs/record.md, output.bin). */
struct uwrx_ev_output { uint32_t fd; uint32_t flags; uint64_t dest_dev; uint64_t dest_ino; };

#define UWRX_EV_SKIP 64
#define UWRX_EV_SKIP_BLOBS "path,reason"
struct uwrx_ev_skip { int32_t status; };

#define UWRX_EV_DOWNLOAD 65
#define UWRX_EV_DOWNLOAD_BLOBS "url,path"
struct uwrx_ev_download { int32_t status; uint64_t size; };

#define UWRX_EV_GIT 66
#define UWRX_EV_GIT_BLOBS "service,url,request,wants"
struct uwrx_ev_git { int32_t status; uint64_t bytes; };

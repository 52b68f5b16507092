// Trace buffer primitives for the Node side: hole punching and clocks for the collector,
// and the C writer (common/tracebuf.c) for events that originate in Node.
#include <cerrno>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <vector>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "addon.h"

extern "C" {
#include "../common/tracebuf.h"
}

// struct uwrx_rec_header's magic (uwrx_recorder.h, which is C only)
static constexpr uint64_t REC_MAGIC = 0x3163657278727775ULL;
// UWRX_REC_DATA_OFFSET: the header, before the region's records (in the header page's tail)
static constexpr uint64_t REC_DATA_OFFSET = 3776;

// fallocate(PUNCH_HOLE|KEEP_SIZE): frees the blocks of [offset, offset+length) of a file
// the collector has read, keeping its size so the writer's offsets stay valid.
static Napi::Value PunchHole(const Napi::CallbackInfo &info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int64_t offset = info[1].As<Napi::Number>().Int64Value();
  int64_t length = info[2].As<Napi::Number>().Int64Value();
  if (length <= 0) return info.Env().Undefined();
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) != 0)
    return ThrowErrno(info.Env(), "fallocate(PUNCH_HOLE)", errno);
  return info.Env().Undefined();
}

// copyBuffer(from, to): a buffer file copied to a new file `to` (created, never
// replacing one) with its holes kept: a buffer is mostly holes (its recorder region's
// unused tail, what the collector punched), which a plain copy would write out as zeros
// (64 MiB and more a file). Its data ranges are found with SEEK_DATA/SEEK_HOLE.
static Napi::Value CopyBuffer(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string from = info[0].As<Napi::String>().Utf8Value();
  std::string to = info[1].As<Napi::String>().Utf8Value();
  int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ThrowErrno(env, ("open " + from).c_str(), errno);
  int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    int err = errno;
    close(in);
    return ThrowErrno(env, ("open " + to).c_str(), err);
  }
  std::vector<char> buf(1 << 16); // (per call: actors on worker threads share the addon)
  struct stat st;
  int err = fstat(in, &st) == 0 ? 0 : errno;
  for (off_t at = 0; !err && at < st.st_size;) {
    off_t data = lseek(in, at, SEEK_DATA);
    if (data < 0) {
      if (errno != ENXIO) err = errno; // ENXIO: no data after `at`
      break;
    }
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) hole = st.st_size;
    for (at = data; !err && at < hole;) {
      ssize_t n = pread(in, buf.data(), std::min((off_t)buf.size(), hole - at), at);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        err = n < 0 ? errno : 0;
        at = hole;
        break;
      }
      for (ssize_t put = 0; put < n && !err;) {
        ssize_t w = pwrite(out, buf.data() + put, (size_t)(n - put), at + put);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) err = w < 0 ? errno : ENOSPC;
        else put += w;
      }
      at += n;
    }
  }
  if (!err && ftruncate(out, st.st_size) != 0) err = errno;
  close(in);
  if (close(out) != 0 && !err) err = errno;
  if (err) {
    unlink(to.c_str());
    return ThrowErrno(env, ("copy " + from + " to " + to).c_str(), err);
  }
  return env.Undefined();
}

// Finished buffer files read whole and removed: for each, the open, reads, close and
// unlink the collector would make one by one, without a JavaScript call, a path walk or
// two Buffers per file. A buffer file has two parts (tracebuf.h): the process's records
// from UWRX_TRACE_DATA_OFFSET to its size, and before them the in-process recorder's
// region (uwrx_recorder.h: a header whose write position says where its records end; a
// hole when there is none).
//
// A short process's parts hold a few hundred bytes each: one read at the start of each
// is all of them unless the header or a full read says there is more; only then a
// second read (and an fstat for the records' end).
static constexpr size_t REGION_FIRST_READ = 8192;
static constexpr size_t RECORDS_FIRST_READ = 16384;

// Reads [from, from + len) of fd, a regular file, into dst; the bytes read (short at the
// file's end). A short read of a regular file is its end: no second read to see a zero
// (a finished buffer's records are mostly shorter than the first read: one pread a file).
static ssize_t ReadAt(int fd, uint8_t *dst, size_t len, uint64_t from) {
  for (;;) {
    ssize_t n = pread(fd, dst, len, (off_t)from);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

// Bytes taken from buffer files: grown without being zeroed first (each file's first
// reads reserve more than most files hold; std::vector would clear all of it).
class Taken {
 public:
  ~Taken() { free(data_); }
  uint8_t *data() { return data_; }
  size_t size() const { return size_; }
  // false (errno ENOMEM) when it cannot grow
  bool resize(size_t n) {
    if (n > cap_) {
      size_t cap = cap_ ? cap_ : 65536;
      while (cap < n) cap *= 2;
      uint8_t *data = (uint8_t *)realloc(data_, cap);
      if (!data) {
        errno = ENOMEM;
        return false;
      }
      data_ = data;
      cap_ = cap;
    }
    size_ = n;
    return true;
  }

 private:
  uint8_t *data_ = nullptr;
  size_t size_ = 0, cap_ = 0;
};

// The pool of finished buffers uwrx-init reuses (tracebuf.h UWRX_TRACE_POOL_PREFIX):
// `next` is the next free.<n> to name (the caller's counter, kept across calls), `max`
// how many may wait at once. Only a buffer its writer closed (<pid>.ended, or one the
// caller flags: the buffer log told its end) whose recorder region and records each
// used at most POOL_PART_MAX bytes is returned; others are deleted. So the pool holds at most max files of at most 2 x POOL_PART_MAX
// allocated (zeroed) bytes each.
// `oldest`: the lowest free.<n> still waiting when the caller last listed the directory
// (-1: not known). uwrx-init takes them in order, so every lower one is gone: a full pool
// is told without a look at the directory. A listing older than now only errs on the full
// side (a buffer deleted that could have waited).
struct Pool {
  int32_t *next;
  int32_t max;
  int32_t oldest;
};
static constexpr uint64_t POOL_PART_MAX = UWRX_TRACE_POOL_PART_MAX;
static constexpr char ENDED_SUFFIX[] = ".ended";

static void PoolName(char *out, size_t n, int32_t index) {
  snprintf(out, n, UWRX_TRACE_POOL_PREFIX "%d", (int)index);
}

static bool EndsWith(const char *name, const char *suffix) {
  size_t n = strlen(name), k = strlen(suffix);
  return n >= k && memcmp(name + n - k, suffix, k) == 0;
}

// Overwrites [from, to) of fd with zeros (the pages stay allocated: no page to free
// now and none to zero on the next writer's first touch).
static bool Zero(int fd, uint64_t from, uint64_t to) {
  static const uint8_t zeros[16384] = {};
  for (uint64_t off = from; off < to;) {
    size_t n = to - off < sizeof zeros ? (size_t)(to - off) : sizeof zeros;
    ssize_t w = pwrite(fd, zeros, n, (off_t)off);
    if (w <= 0) return false;
    off += (uint64_t)w;
  }
  return true;
}

// Resets buffer `fd` (named `name`, read to its end) and renames it into the pool: its
// first `regionEnd` bytes (the recorder region's header page and records) and its
// `recordsLen` bytes of records overwritten with zeros, at least UWRX_TRACE_DATA_OFFSET
// long, so it reads as an empty buffer, as uwrx_tracebuf_reuse expects; all of it before
// it gets a name uwrx-init takes, so a new process never shows the old one's records.
// (Zeros, not a cut: ftruncate on tmpfs walks and frees the range, as costly as the
// delete it replaces; the readers stop at a zero record size.) False: not pooled (full,
// or a step failed): the caller deletes it.
static bool ReturnToPool(int dirfd, int fd, const char *name, uint64_t regionEnd, uint64_t recordsLen, Pool &pool) {
  char to[32];
  if (*pool.next >= pool.max) {
    // free.<next - max> still there: max buffers wait already
    if (pool.oldest >= 0) {
      if (*pool.next - pool.max >= pool.oldest) return false;
    } else {
      PoolName(to, sizeof to, *pool.next - pool.max);
      if (faccessat(dirfd, to, F_OK, AT_SYMLINK_NOFOLLOW) == 0) return false;
    }
  }
  if (!Zero(fd, 0, regionEnd) || !Zero(fd, UWRX_TRACE_DATA_OFFSET, UWRX_TRACE_DATA_OFFSET + recordsLen)) return false;
  // pages allocated past what was read (the recorder allocates output's pages ahead of
  // writing them) count too: the pool's bound is on memory
  struct stat st;
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_blocks * 512 > 2 * POOL_PART_MAX) return false;
  // the recorder region lies before the end (a buffer with neither part is empty)
  if ((uint64_t)st.st_size < UWRX_TRACE_DATA_OFFSET && ftruncate(fd, (off_t)UWRX_TRACE_DATA_OFFSET) != 0) return false;
  PoolName(to, sizeof to, *pool.next);
  if (renameat(dirfd, name, dirfd, to) != 0) return false;
  ++*pool.next;
  return true;
}

// What TakeOne did with a file (its parts' places in `out` when TAKEN).
enum TakeResult { TAKEN, GONE, TOO_LARGE, FAILED };

struct TakenParts {
  size_t records, recordsLen;
  size_t region;
  int64_t regionLen; // -1: no region (a hole)
};

// Appends the file's region (if any), then its records, to `out`; removes the file, or
// with a pool returns it there when it qualifies (ReturnToPool). FAILED sets errno and
// `what`; GONE and TOO_LARGE leave `out` as it was.
// `closed`: its writer closed it (named <pid>.ended, or logged in the ended log).
static TakeResult TakeOne(int dirfd, const char *name, uint64_t maxBytes, Taken &out, TakenParts &parts,
                          const char *&what, Pool *pool = nullptr, bool closed = false) {
  const size_t base = out.size();
  // a pooled buffer is written (reset): only one its writer closed
  if (pool && !closed && !EndsWith(name, ENDED_SUFFIX)) pool = nullptr;
  int fd = openat(dirfd, name, (pool ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    what = "open";
    return errno == ENOENT ? GONE : FAILED;
  }
  auto undo = [&](TakeResult r, const char *op) {
    int err = errno;
    close(fd);
    (void)out.resize(base);
    errno = err;
    what = op;
    return r;
  };
  // the region: its header (struct uwrx_rec_header: magic, then the write position and
  // the region's size, u64 at 16 and 24) says where its records end
  if (!out.resize(base + REGION_FIRST_READ)) return undo(FAILED, "read");
  ssize_t n = ReadAt(fd, out.data() + base, REGION_FIRST_READ, 0);
  if (n < 0) return undo(FAILED, "read");
  size_t have = (size_t)n;
  uint64_t header[4] = {0, 0, 0, 0};
  if (have >= sizeof header) memcpy(header, out.data() + base, sizeof header);
  parts.region = base;
  parts.regionLen = -1;
  // what a reset overwrites: the region's header page and records (none without one)
  uint64_t zeroTo = 0;
  if (header[0] != 0) {
    uint64_t end = sizeof header; // not a header: what the collector needs to say so
    if (header[0] == REC_MAGIC) end = header[2] < header[3] ? header[2] : header[3];
    if (end > UWRX_TRACE_DATA_OFFSET) end = UWRX_TRACE_DATA_OFFSET;
    // a region that is no header, or larger than a pooled buffer may hold, is deleted
    if (header[0] != REC_MAGIC || end < REC_DATA_OFFSET || end > POOL_PART_MAX) pool = nullptr;
    zeroTo = end;
    if (end > maxBytes) return undo(TOO_LARGE, nullptr);
    size_t got = have < end ? have : (size_t)end;
    if (!out.resize(base + (size_t)end)) return undo(FAILED, "read");
    if (got < end) {
      ssize_t more = ReadAt(fd, out.data() + base + got, (size_t)end - got, got);
      if (more < 0) return undo(FAILED, "read");
      got += (size_t)more;
    }
    parts.regionLen = (int64_t)got;
  }
  const size_t records = base + (parts.regionLen < 0 ? 0 : (size_t)parts.regionLen);
  // the records: a short read is the file's end
  if (!out.resize(records + RECORDS_FIRST_READ)) return undo(FAILED, "read");
  n = ReadAt(fd, out.data() + records, RECORDS_FIRST_READ, UWRX_TRACE_DATA_OFFSET);
  if (n < 0) return undo(FAILED, "read");
  have = (size_t)n;
  uint64_t end = have;
  if (have == RECORDS_FIRST_READ) {
    struct stat st;
    if (fstat(fd, &st) != 0) return undo(FAILED, "fstat");
    end = (uint64_t)st.st_size > UWRX_TRACE_DATA_OFFSET ? (uint64_t)st.st_size - UWRX_TRACE_DATA_OFFSET : 0;
  }
  if (end > maxBytes) return undo(TOO_LARGE, nullptr);
  size_t got = have < end ? have : (size_t)end;
  if (!out.resize(records + (size_t)end)) return undo(FAILED, "read");
  if (got < end) {
    ssize_t more = ReadAt(fd, out.data() + records + got, (size_t)end - got, UWRX_TRACE_DATA_OFFSET + got);
    if (more < 0) return undo(FAILED, "read");
    got += (size_t)more;
  }
  (void)out.resize(records + got);
  parts.records = records;
  parts.recordsLen = got;
  bool pooled = pool && got <= POOL_PART_MAX && ReturnToPool(dirfd, fd, name, zeroTo, got, *pool);
  close(fd);
  if (!pooled && unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) {
    what = "unlink";
    return FAILED;
  }
  return TAKEN;
}

// takeFile(path, maxBytes): one finished buffer file. Returns [records, region] (region:
// its header page and records, or undefined without one); null, leaving the file, when
// either is more than maxBytes; undefined when the file is gone.
static Napi::Value TakeFile(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  double maxBytes = info[1].As<Napi::Number>().DoubleValue();
  Taken out;
  TakenParts parts{};
  const char *what = nullptr;
  switch (TakeOne(AT_FDCWD, path.c_str(), maxBytes < 0 ? 0 : (uint64_t)maxBytes, out, parts, what)) {
  case GONE: return env.Undefined();
  case TOO_LARGE: return env.Null();
  case FAILED: return ThrowErrno(env, what, errno);
  case TAKEN: break;
  }
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Buffer<uint8_t>::Copy(env, out.data() + parts.records, parts.recordsLen));
  result.Set(1u, parts.regionLen < 0 ? env.Undefined()
                                     : Napi::Buffer<uint8_t>::Copy(env, out.data() + parts.region, (size_t)parts.regionLen));
  return result;
}

// takeFiles(dir, names, maxBytes, layout) -> bytes: the files `names` of directory `dir`
// taken as takeFile takes one, their parts in one Buffer. layout (an Int32Array of 4 per
// name) gets, for name i at 4i: its records' offset in bytes and length, its region's
// offset and length (-1: no region); or a records length of TAKE_GONE (-1) or
// TAKE_TOO_LARGE (-2: left in place). One bytes per call, so callers keep each call's
// total small enough for int32 offsets (maxBytes and the names' count bound it).
// pool (optional, an Int32Array [next, max] or [next, max, oldest]): finished buffers are
// returned to the pool (ReturnToPool) instead of deleted, and next counts the ones returned.
// closed (optional, a Uint8Array of one per name): non-zero where the writer closed a
// buffer not named <pid>.ended (its pid was in the ended log): it may be pooled too.
static Napi::Value TakeFiles(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  Napi::Array names = info[1].As<Napi::Array>();
  double maxBytes = info[2].As<Napi::Number>().DoubleValue();
  Napi::Int32Array layout = info[3].As<Napi::Int32Array>();
  uint32_t count = names.Length();
  if (layout.ElementLength() < (size_t)count * 4) {
    Napi::RangeError::New(env, "takeFiles: layout holds fewer than 4 entries per name").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Pool pool{nullptr, 0, -1};
  if (info.Length() > 4 && info[4].IsTypedArray()) {
    Napi::Int32Array state = info[4].As<Napi::Int32Array>();
    if (state.ElementLength() >= 2 && state[1] > 0) pool = Pool{state.Data(), state[1], state.ElementLength() >= 3 ? state[2] : -1};
  }
  const uint8_t *closed = nullptr;
  if (info.Length() > 5 && info[5].IsTypedArray()) {
    Napi::Uint8Array flags = info[5].As<Napi::Uint8Array>();
    if (flags.ElementLength() < count) {
      Napi::RangeError::New(env, "takeFiles: closed holds fewer entries than names").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    closed = flags.Data();
  }
  int dirfd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return ThrowErrno(env, ("open " + dir).c_str(), errno);
  Taken out;
  int32_t *slots = layout.Data();
  for (uint32_t i = 0; i < count; i++) {
    std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    TakenParts parts{};
    const char *what = nullptr;
    int32_t *slot = slots + 4 * (size_t)i;
    switch (TakeOne(dirfd, name.c_str(), maxBytes < 0 ? 0 : (uint64_t)maxBytes, out, parts, what,
                    pool.next ? &pool : nullptr, closed && closed[i] != 0)) {
    case GONE:
      slot[0] = 0, slot[1] = -1, slot[2] = 0, slot[3] = -1;
      continue;
    case TOO_LARGE:
      slot[0] = 0, slot[1] = -2, slot[2] = 0, slot[3] = -1;
      continue;
    case FAILED: {
      int err = errno;
      close(dirfd);
      return ThrowErrno(env, (std::string(what) + " " + dir + "/" + name).c_str(), err);
    }
    case TAKEN:
      slot[0] = (int32_t)parts.records, slot[1] = (int32_t)parts.recordsLen;
      slot[2] = (int32_t)parts.region, slot[3] = (int32_t)parts.regionLen;
      break;
    }
  }
  close(dirfd);
  return Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size());
}

// bufferAllocated(path) -> [records, region]: the allocated bytes of a buffer file's
// records and of its recorder region (tmp use, as the writer's throttle counts it);
// undefined when the file is gone or its region kept changing while measured (the
// records' share is the file's blocks less the region's, so both must be of one moment).
static Napi::Value BufferAllocated(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return env.Undefined();
    return ThrowErrno(env, "open", errno);
  }
  struct stat st;
  uint64_t region = 0;
  bool settled = false;
  for (int tries = 0; tries < 4 && !settled; tries++) {
    region = uwrx_tracebuf_region_allocated(fd);
    if (fstat(fd, &st) != 0) {
      int err = errno;
      close(fd);
      return ThrowErrno(env, "fstat", err);
    }
    settled = uwrx_tracebuf_region_allocated(fd) == region;
  }
  close(fd);
  if (!settled) return env.Undefined();
  uint64_t all = (uint64_t)st.st_blocks * 512;
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, (double)(all > region ? all - region : 0)));
  out.Set(1u, Napi::Number::New(env, (double)region));
  return out;
}

// listBuffers(dir, out) -> count: the buffer files of traces/, "<pid>" (live) and
// "<pid>.ended", as [pid, kind] pairs into the Int32Array out (kind 0 live, 1 ended),
// each pid written as uwrx-init and the Node writers name them (decimal, no leading
// zero, below 2^31); the pool's waiting buffers "free.<n>" as [n, 2]; anything else
// there (a rename's temporary) is left out. Returns
// the number of int32s the pairs take (those beyond out's length are not written: the
// caller calls again with a larger one), or -1 when dir is gone. The collector lists the
// directory every scan: without a string per entry, a pattern test in JavaScript, or a
// new array each time.
static Napi::Value ListBuffers(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  Napi::Int32Array out = info[1].As<Napi::Int32Array>();
  int32_t *slots = out.Data();
  size_t room = out.ElementLength();
  DIR *d = opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return Napi::Number::New(env, -1);
    return ThrowErrno(env, ("opendir " + dir).c_str(), errno);
  }
  size_t n = 0;
  errno = 0;
  for (struct dirent *e; (e = readdir(d)) != nullptr; errno = 0) {
    const char *p = e->d_name;
    int32_t kind = 0;
    if (strncmp(p, UWRX_TRACE_POOL_PREFIX, sizeof UWRX_TRACE_POOL_PREFIX - 1) == 0) {
      p += sizeof UWRX_TRACE_POOL_PREFIX - 1;
      kind = 2;
    }
    if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9')) continue;
    uint64_t pid = 0;
    for (; *p >= '0' && *p <= '9' && pid <= INT32_MAX; p++) pid = pid * 10 + (uint64_t)(*p - '0');
    if (pid > INT32_MAX) continue;
    if (kind == 0 && strcmp(p, ENDED_SUFFIX) == 0) kind = 1;
    else if (*p) continue;
    if (n + 2 <= room) slots[n] = (int32_t)pid, slots[n + 1] = kind;
    n += 2;
  }
  int err = errno;
  closedir(d);
  if (err != 0) return ThrowErrno(env, ("readdir " + dir).c_str(), err);
  return Napi::Number::New(env, (double)n);
}

// pollBuffers(fds, out): for each open live buffer fds[i], out[2i] its size (fstat) and
// out[2i+1] where its recorder region's committed records end (the header's write
// position, at most its size and UWRX_TRACE_DATA_OFFSET; 0 without a valid header);
// -1 in either where the call failed (the caller asks again by itself and gets the
// error). A scan looks at every live buffer and most have nothing new: one call for all
// instead of an fstat and a header read in JavaScript for each.
static Napi::Value PollBuffers(const Napi::CallbackInfo &info) {
  Napi::Int32Array fds = info[0].As<Napi::Int32Array>();
  Napi::Float64Array out = info[1].As<Napi::Float64Array>();
  size_t count = fds.ElementLength();
  if (out.ElementLength() < count * 2) {
    Napi::RangeError::New(info.Env(), "pollBuffers: out holds fewer than 2 entries per fd").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  for (size_t i = 0; i < count; i++) {
    int fd = fds[i];
    struct stat st;
    out[2 * i] = fstat(fd, &st) == 0 ? (double)st.st_size : -1;
    uint8_t h[56];
    ssize_t got = ReadAt(fd, h, sizeof h, 0);
    if (got < 0) {
      out[2 * i + 1] = -1;
      continue;
    }
    uint64_t magic = 0, pos = 0, size = 0;
    if (got == (ssize_t)sizeof h) memcpy(&magic, h, 8), memcpy(&pos, h + 16, 8), memcpy(&size, h + 24, 8);
    uint64_t limit = magic != REC_MAGIC ? 0 : std::min(std::min(pos, size), (uint64_t)UWRX_TRACE_DATA_OFFSET);
    out[2 * i + 1] = (double)limit;
  }
  return info.Env().Undefined();
}

// clock_gettime(id) in nanoseconds: the writers stamp records with CLOCK_BOOTTIME, which
// Node's own clocks do not expose.
static Napi::Value ClockNs(const Napi::CallbackInfo &info) {
  struct timespec ts;
  clockid_t id = (clockid_t)info[0].As<Napi::Number>().Int32Value();
  if (clock_gettime(id, &ts) != 0) return ThrowErrno(info.Env(), "clock_gettime", errno);
  return Napi::Number::New(info.Env(), (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec);
}

struct Writer {
  struct uwrx_tracebuf tb;
  int dirfd = -1;
  bool open = false;
};

static void FreeWriter(Napi::Env, Writer *w) {
  if (w->open) uwrx_tracebuf_close(&w->tb, 0);
  if (w->dirfd >= 0) close(w->dirfd);
  delete w;
}

// traceWriterOpen(tracesDir, pid, backlogMax?) -> handle (backlogMax 0: never wait)
static Napi::Value TraceWriterOpen(const Napi::CallbackInfo &info) {
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  uint32_t pid = info[1].As<Napi::Number>().Uint32Value();
  int dirfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return ThrowErrno(info.Env(), ("open " + dir).c_str(), errno);
  Writer *w = new Writer();
  w->dirfd = dirfd;
  int r = uwrx_tracebuf_open(&w->tb, dirfd, pid);
  if (r != 0) {
    close(dirfd);
    delete w;
    return ThrowErrno(info.Env(), ("uwrx_tracebuf_open " + dir).c_str(), -r);
  }
  if (info.Length() > 2 && info[2].IsNumber()) w->tb.backlog_max = (uint64_t)info[2].As<Napi::Number>().Int64Value();
  w->open = true;
  return Napi::External<Writer>::New(info.Env(), w, FreeWriter);
}

static Writer *WriterOf(const Napi::CallbackInfo &info) {
  Writer *w = info[0].As<Napi::External<Writer>>().Data();
  if (!w->open) {
    ThrowErrno(info.Env(), "trace writer", EBADF);
    return nullptr;
  }
  return w;
}

// traceWriterAppend(handle, record): one encoded record (events.ts encodeEvent).
static Napi::Value TraceWriterAppend(const Napi::CallbackInfo &info) {
  Writer *w = WriterOf(info);
  if (!w) return info.Env().Undefined();
  Napi::Buffer<uint8_t> rec = info[1].As<Napi::Buffer<uint8_t>>();
  int r = uwrx_trace_append_raw(&w->tb, rec.Data(), rec.Length());
  if (r != 0) return ThrowErrno(info.Env(), "uwrx_trace_append_raw", -r);
  return info.Env().Undefined();
}

// traceWriterClose(handle, ended)
static Napi::Value TraceWriterClose(const Napi::CallbackInfo &info) {
  Writer *w = WriterOf(info);
  if (!w) return info.Env().Undefined();
  w->open = false;
  int r = uwrx_tracebuf_close(&w->tb, info[1].ToBoolean().Value() ? 1 : 0);
  if (r != 0) return ThrowErrno(info.Env(), "uwrx_tracebuf_close", -r);
  return info.Env().Undefined();
}

void InitTraceBuf(Napi::Env env, Napi::Object exports) {
  exports.Set("punchHole", Napi::Function::New(env, PunchHole));
  exports.Set("copyBuffer", Napi::Function::New(env, CopyBuffer));
  exports.Set("takeFile", Napi::Function::New(env, TakeFile));
  exports.Set("takeFiles", Napi::Function::New(env, TakeFiles));
  exports.Set("listBuffers", Napi::Function::New(env, ListBuffers));
  exports.Set("pollBuffers", Napi::Function::New(env, PollBuffers));
  exports.Set("bufferAllocated", Napi::Function::New(env, BufferAllocated));
  exports.Set("clockNs", Napi::Function::New(env, ClockNs));
  exports.Set("traceWriterOpen", Napi::Function::New(env, TraceWriterOpen));
  exports.Set("traceWriterAppend", Napi::Function::New(env, TraceWriterAppend));
  exports.Set("traceWriterClose", Napi::Function::New(env, TraceWriterClose));
}

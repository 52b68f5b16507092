// Trace buffer primitives for the Node side: hole punching and clocks for the collector,
// and the C writer (common/tracebuf.c) for events that originate in Node.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "addon.h"

extern "C" {
#include "../common/tracebuf.h"
}

// struct uwrx_rec_header's magic (uwrx_recorder.h, which is C only)
static constexpr uint64_t REC_MAGIC = 0x3163657278727775ULL;

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

// takeFile(path, maxBytes): a finished buffer file read whole and removed, in one call
// where the collector would make five (open, fstat, read, close, unlink). A buffer file
// has two parts (tracebuf.h): the process's records from UWRX_TRACE_DATA_OFFSET to its
// size, and before them the in-process recorder's region (uwrx_recorder.h: a header
// whose write position says where its records end; a hole when there is none). Returns
// [records, region] (region: its header page and records, or undefined without one);
// null, leaving the file, when either is more than maxBytes; undefined when the file is
// gone.
//
// A short process's parts hold a few hundred bytes each: one read of FIRST_READ bytes
// at the start of each is all of them unless the header or a full read says there is
// more; only then a second read (and an fstat for the records' end).
static constexpr size_t FIRST_READ = 16384;

// Reads [from, from + len) of fd into dst; the bytes read (short at the file's end).
static ssize_t ReadAt(int fd, uint8_t *dst, size_t len, uint64_t from) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, dst + got, len - got, (off_t)(from + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

static Napi::Value TakeFile(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  double maxBytes = info[1].As<Napi::Number>().DoubleValue();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return env.Undefined();
    return ThrowErrno(env, "open", errno);
  }
  auto fail = [&](const char *what) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, what, err);
  };
  auto tooLarge = [&]() {
    close(fd);
    return env.Null();
  };
  // the region: its header (struct uwrx_rec_header: magic, then the write position and
  // the region's size, u64 at 16 and 24) says where its records end
  unsigned char first[FIRST_READ];
  ssize_t n = ReadAt(fd, first, sizeof first, 0);
  if (n < 0) return fail("read");
  size_t have = (size_t)n;
  uint64_t header[4] = {0, 0, 0, 0};
  if (have >= sizeof header) memcpy(header, first, sizeof header);
  Napi::Value region = env.Undefined();
  if (header[0] != 0) {
    uint64_t end = sizeof header; // not a header: what the collector needs to say so
    if (header[0] == REC_MAGIC) end = header[2] < header[3] ? header[2] : header[3];
    if (end > UWRX_TRACE_DATA_OFFSET) end = UWRX_TRACE_DATA_OFFSET;
    if ((double)end > maxBytes) return tooLarge();
    Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, (size_t)end);
    size_t got = have < end ? have : (size_t)end;
    memcpy(buf.Data(), first, got);
    if (got < end) {
      ssize_t more = ReadAt(fd, buf.Data() + got, (size_t)end - got, got);
      if (more < 0) return fail("read");
      got += (size_t)more;
    }
    region = got < end ? Napi::Buffer<uint8_t>::Copy(env, buf.Data(), got) : buf;
  }
  // the records: a short read is the file's end
  n = ReadAt(fd, first, sizeof first, UWRX_TRACE_DATA_OFFSET);
  if (n < 0) return fail("read");
  have = (size_t)n;
  uint64_t end = have;
  if (have == sizeof first) {
    struct stat st;
    if (fstat(fd, &st) != 0) return fail("fstat");
    end = (uint64_t)st.st_size > UWRX_TRACE_DATA_OFFSET ? (uint64_t)st.st_size - UWRX_TRACE_DATA_OFFSET : 0;
  }
  if ((double)end > maxBytes) return tooLarge();
  Napi::Buffer<uint8_t> records = Napi::Buffer<uint8_t>::New(env, (size_t)end);
  size_t got = have < end ? have : (size_t)end;
  memcpy(records.Data(), first, got);
  if (got < end) {
    ssize_t more = ReadAt(fd, records.Data() + got, (size_t)end - got, UWRX_TRACE_DATA_OFFSET + got);
    if (more < 0) return fail("read");
    got += (size_t)more;
  }
  close(fd);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return ThrowErrno(env, "unlink", errno);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, got < end ? Napi::Buffer<uint8_t>::Copy(env, records.Data(), got) : records);
  out.Set(1u, region);
  return out;
}

// bufferAllocated(path) -> [records, region]: the allocated bytes of a buffer file's
// records and of its recorder region (tmp use, as the writer's throttle counts it);
// undefined when the file is gone.
static Napi::Value BufferAllocated(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return env.Undefined();
    return ThrowErrno(env, "open", errno);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "fstat", err);
  }
  uint64_t all = (uint64_t)st.st_blocks * 512, region = uwrx_tracebuf_region_allocated(fd);
  close(fd);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, (double)(all > region ? all - region : 0)));
  out.Set(1u, Napi::Number::New(env, (double)region));
  return out;
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
  exports.Set("takeFile", Napi::Function::New(env, TakeFile));
  exports.Set("bufferAllocated", Napi::Function::New(env, BufferAllocated));
  exports.Set("clockNs", Napi::Function::New(env, ClockNs));
  exports.Set("traceWriterOpen", Napi::Function::New(env, TraceWriterOpen));
  exports.Set("traceWriterAppend", Napi::Function::New(env, TraceWriterAppend));
  exports.Set("traceWriterClose", Napi::Function::New(env, TraceWriterClose));
}

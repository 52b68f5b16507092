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

// takeFile(path, maxBytes, recorder): a finished buffer file read whole and removed, in
// one call where the collector made five (open, fstat, read, close, unlink) for each of
// the two buffers of every process. A process buffer is read to its size; a recorder
// buffer (uwrx_recorder.h: sparse, its header says where the records end) to the end
// of its records. Returns the bytes; null, leaving the file, when they are more than
// maxBytes; undefined when the file is gone.
//
// A short process's buffers hold a few hundred bytes: the first read takes FIRST_READ
// bytes from the start (a recorder buffer's header page and its first records), which
// is all of them unless the file or the header says there is more; only then fstat and
// a second read. Three system calls per buffer fewer than a header read, an fstat and a
// read of each.
static constexpr size_t FIRST_READ = 16384;

static Napi::Value TakeFile(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  double maxBytes = info[1].As<Napi::Number>().DoubleValue();
  bool recorder = info[2].ToBoolean();
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
  unsigned char first[FIRST_READ];
  ssize_t n;
  do n = pread(fd, first, sizeof first, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return fail("read");
  size_t have = (size_t)n;
  // where the bytes end: a short read is the file's end; a recorder buffer's header
  // (struct uwrx_rec_header: the write position and the file size, u64 at 16 and 24)
  // says where its records end
  bool known = have < sizeof first;
  uint64_t end = have;
  if (recorder && have >= 32) {
    uint64_t header[4];
    memcpy(header, first, sizeof header);
    uint64_t limit = header[2] < header[3] ? header[2] : header[3];
    if (limit <= have) known = true, end = limit;
    else if (known) end = have;  // the file ends before the header says: what is there
    else end = limit;
  }
  if (!known && !recorder) {
    struct stat st;
    if (fstat(fd, &st) != 0) return fail("fstat");
    end = (uint64_t)st.st_size;
  }
  if ((double)end > maxBytes) {
    close(fd);
    return env.Null();
  }
  Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, (size_t)end);
  size_t got = have < end ? have : (size_t)end;
  memcpy(buf.Data(), first, got);
  while (got < end) {
    n = pread(fd, buf.Data() + got, (size_t)end - got, (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("read");
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return ThrowErrno(env, "unlink", errno);
  if (got < end) return Napi::Buffer<uint8_t>::Copy(env, buf.Data(), got);
  return buf;
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
  exports.Set("clockNs", Napi::Function::New(env, ClockNs));
  exports.Set("traceWriterOpen", Napi::Function::New(env, TraceWriterOpen));
  exports.Set("traceWriterAppend", Napi::Function::New(env, TraceWriterAppend));
  exports.Set("traceWriterClose", Napi::Function::New(env, TraceWriterClose));
}

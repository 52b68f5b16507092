// The merger's hot path: access records (the bulk of a trace: one per open, stat or
// probe) turned into the access index (src/record/accesses.ts) and Perfetto packets
// (src/actors/merger.ts emitAccess), a run of records per call. The bytes written are
// exactly those of the TypeScript implementation, which stays the reference: the record
// layout, operation names and the like come from it at creation, nothing is restated here.
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>
#include "addon.h"

namespace {

// Field types of the record schema (events.ts FieldType), as AccessWriter's layout codes.
enum FieldType : int32_t { U32 = 0, I32 = 1, I64 = 2, U64 = 3 };

// Why emit stopped before the end of its span (io[IO_REASON]).
enum Reason { DONE = 0, OTHER = 1, ROOM = 2, FULL = 3 };

// The io slots shared with TypeScript (src/record/access-writer.ts IO).
enum Io { IO_LAST_TIME = 0, IO_POS, IO_EVENTS, IO_PACKETS, IO_REPEATS, IO_REASON, IO_EMITTED, IO_NEED, IO_SIZE };

// Perfetto field numbers and flags (src/protocol/perfetto.ts).
constexpr uint32_t TRACE_PACKET = 1, P_TIMESTAMP = 8, P_SEQUENCE_ID = 10, P_TRACK_EVENT = 11, P_SEQUENCE_FLAGS = 13;
constexpr uint32_t TE_DEBUG_ANNOTATIONS = 4, TE_TYPE = 9, TE_NAME_IID = 10, TE_TRACK_UUID = 11;
constexpr uint32_t DA_NAME_IID = 1, DA_UINT_VALUE = 3, DA_INT_VALUE = 4, DA_STRING_VALUE = 6;
constexpr uint64_t NEEDS_INCREMENTAL_STATE = 2, TYPE_INSTANT = 3;
constexpr int NESTED_LEN_BYTES = 4;
constexpr uint16_t FLAG_TRUNCATED = 1;
constexpr int64_t ENOENT_RESULT = -2, ENOTDIR_RESULT = -20;

struct Field {
  uint32_t at;
  int32_t type;
};

struct Entry {
  int32_t pid;
  uint8_t op;
  uint32_t hash;
  uint32_t start, len;
  uint64_t count;
};

inline uint32_t U32At(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
inline uint16_t U16At(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}
inline int32_t I32At(const uint8_t *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}
// The field's value as the TypeScript reader makes it: a double (hi * 2^32 + lo).
inline double ValueAt(const uint8_t *p, int32_t type) {
  switch (type) {
    case U32: return (double)U32At(p);
    case I32: return (double)I32At(p);
    case I64: return (double)I32At(p + 4) * 4294967296.0 + (double)U32At(p);
    default: return (double)U32At(p + 4) * 4294967296.0 + (double)U32At(p);
  }
}

// Printable ASCII without a backslash: the escaped text is the bytes (escape.ts isPlain).
// Eight bytes at a step: a byte below 0x20, at or above 0x7f, or equal to 0x5c.
inline bool IsPlain(const uint8_t *b, size_t n) {
  constexpr uint64_t ONES = 0x0101010101010101ull, HIGHS = 0x8080808080808080ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    uint64_t below = (w - 0x20 * ONES) & ~w;                  // a byte < 0x20 (or >= 0x80)
    uint64_t above = w | ((w & ~HIGHS) + ONES);               // a byte >= 0x7f
    uint64_t x = w ^ (0x5c * ONES);
    uint64_t backslash = (x - ONES) & ~x;                     // a byte == 0x5c
    if ((below | above | backslash) & HIGHS) return false;
  }
  for (; i < n; i++)
    if (b[i] < 0x20 || b[i] >= 0x7f || b[i] == 0x5c) return false;
  return true;
}

// Length of a valid UTF-8 sequence at b[i], or 0 (escape.ts utf8SequenceLength).
size_t Utf8SequenceLength(const uint8_t *b, size_t n, size_t i) {
  uint8_t c = b[i];
  size_t len;
  uint32_t min;
  if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
  else return 0;
  if (i + len > n) return 0;
  uint32_t cp = c & (0xff >> (len + 1));
  for (size_t k = 1; k < len; k++) {
    uint8_t d = b[i + k];
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

// The UTF-8 bytes of escapeBytes(b) written at out (room for 4 bytes per input byte);
// returns the end.
uint8_t *Escape(const uint8_t *b, size_t n, uint8_t *out) {
  static const char hex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < n) {
    uint8_t c = b[i];
    if (c == 0x09) *out++ = '\\', *out++ = 't';
    else if (c == 0x0a) *out++ = '\\', *out++ = 'n';
    else if (c == 0x0d) *out++ = '\\', *out++ = 'r';
    else if (c == 0x5c) *out++ = '\\', *out++ = '\\';
    else if (c < 0x20 || c == 0x7f) *out++ = '\\', *out++ = 'x', *out++ = hex[c >> 4], *out++ = hex[c & 15];
    else if (c < 0x80) *out++ = c;
    else {
      size_t len = Utf8SequenceLength(b, n, i);
      if (len == 0) *out++ = '\\', *out++ = 'x', *out++ = hex[c >> 4], *out++ = hex[c & 15];
      else {
        memcpy(out, b + i, len);
        out += len;
        i += len;
        continue;
      }
    }
    i++;
  }
  return out;
}

inline uint8_t *Varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}
inline uint8_t *Tag(uint8_t *p, uint32_t field, uint32_t wire) { return Varint(p, (uint64_t)field * 8 + wire); }
inline uint8_t *Uint(uint8_t *p, uint32_t field, uint64_t v) { return Varint(Tag(p, field, 0), v); }
// A nested message's length, fixed width (ProtoWriter.beginMessage/endMessage).
inline uint8_t *BeginMessage(uint8_t *p, uint32_t field, uint8_t **lenAt) {
  p = Tag(p, field, 2);
  *lenAt = p;
  return p + NESTED_LEN_BYTES;
}
inline void EndMessage(uint8_t *lenAt, uint8_t *end) {
  uint32_t len = (uint32_t)(end - lenAt - NESTED_LEN_BYTES);
  for (int i = 0; i < NESTED_LEN_BYTES; i++)
    lenAt[i] = (uint8_t)(((len >> (7 * i)) & 0x7f) | (i == NESTED_LEN_BYTES - 1 ? 0 : 0x80));
}
// A debug annotation's number: negative values of signed fields stay signed (intValue,
// 64-bit two's complement), everything else is uintValue of max(v, 0).
inline uint8_t *AnnotationNumber(uint8_t *p, double v, bool isSigned) {
  if (isSigned && v < 0) return Uint(p, DA_INT_VALUE, (uint64_t)(int64_t)v);
  return Uint(p, DA_UINT_VALUE, v > 0 ? (uint64_t)v : 0);
}

class AccessWriter {
 public:
  bool withIndex = false;
  uint16_t accessCode = 0;
  uint32_t opAt = 0, resultAt = 0, countAt = 0, pathLengthAt = 0;
  std::vector<Field> fields;
  // index operation code of each record op (ACCESS_OPS), and of a failed lookup
  std::vector<uint8_t> opCodes;
  uint8_t statCode = 0, missingCode = 0;
  std::vector<std::string> opNames;
  std::string ownPrefix;
  uint32_t chunkBytes = 0;
  // every record type's fixed part (header included, 8-aligned) and number of blobs
  struct RecordType {
    uint32_t fixedEnd = 0;
    uint32_t blobs = 0;
    bool known = false;
  };
  std::vector<RecordType> types = std::vector<RecordType>(65536);
  Napi::Reference<Napi::Float64Array> ioRef;
  double *io = nullptr;

  // the index: entries in first-access order, their paths in one arena, an open
  // addressing table of entry + 1 (0 free), at most half full
  std::vector<Entry> entries;
  std::string arena;
  std::vector<uint32_t> slots = std::vector<uint32_t>(2048, 0);

  bool IsOwn(const uint8_t *b, size_t n) const {
    return n >= ownPrefix.size() && memcmp(b, ownPrefix.data(), ownPrefix.size()) == 0;
  }

  uint8_t IndexOp(uint32_t op, int64_t result) const {
    if (result == ENOENT_RESULT || result == ENOTDIR_RESULT) return missingCode;
    return op < opCodes.size() ? opCodes[op] : statCode;
  }

  // `times` accesses of path b[0, n); true when the entry is new.
  bool Add(int32_t pid, uint8_t op, const uint8_t *b, size_t n, uint64_t times) {
    uint32_t h = Hash(pid, op, b, n);
    size_t mask = slots.size() - 1;
    for (size_t slot = h & mask;; slot = (slot + 1) & mask) {
      uint32_t at = slots[slot];
      if (at == 0) {
        entries.push_back(Entry{pid, op, h, (uint32_t)arena.size(), (uint32_t)n, times});
        arena.append((const char *)b, n);
        slots[slot] = (uint32_t)entries.size();
        if (entries.size() * 2 > slots.size()) Rehash();
        return true;
      }
      Entry &e = entries[at - 1];
      if (e.hash == h && e.pid == pid && e.op == op && e.len == n && memcmp(arena.data() + e.start, b, n) == 0) {
        e.count += times;
        return false;
      }
    }
  }

  // A hash of (pid, op, path), eight bytes at a step (only this table sees it).
  static uint32_t Hash(int32_t pid, uint8_t op, const uint8_t *b, size_t n) {
    constexpr uint64_t K = 0x9e3779b97f4a7c15ull;
    uint64_t h = ((uint64_t)(uint32_t)pid << 8 | op) * K ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      memcpy(&w, b + i, 8);
      h = (h ^ w) * K;
      h ^= h >> 29;
    }
    uint64_t tail = 0;
    memcpy(&tail, b + i, n - i);
    h = (h ^ tail) * K;
    h ^= h >> 32;
    return (uint32_t)h;
  }

  void Rehash() {
    std::vector<uint32_t> next(slots.size() * 2, 0);
    size_t mask = next.size() - 1;
    for (size_t e = 0; e < entries.size(); e++) {
      size_t slot = entries[e].hash & mask;
      while (next[slot] != 0) slot = (slot + 1) & mask;
      next[slot] = (uint32_t)e + 1;
    }
    slots.swap(next);
  }

  // accesses.tsv's bytes (AccessIndex.formatInto), written to fd; 0 or an errno.
  int WriteIndex(int fd, const std::string &header) const {
    std::string out;
    out.reserve(1 << 20);
    out += header;
    std::vector<uint8_t> escaped;
    char digits[24];
    auto decimal = [&](uint64_t v) {
      char *end = digits + sizeof digits, *p = end;
      do *--p = (char)('0' + v % 10);
      while ((v /= 10) != 0);
      out.append(p, (size_t)(end - p));
    };
    auto flush = [&](bool all) -> int {
      if (!all && out.size() < (1 << 20) - 64) return 0;
      size_t off = 0;
      while (off < out.size()) {
        ssize_t w = write(fd, out.data() + off, out.size() - off);
        if (w < 0) {
          if (errno == EINTR) continue;
          return errno;
        }
        off += (size_t)w;
      }
      out.clear();
      return 0;
    };
    for (const Entry &e : entries) {
      const uint8_t *path = (const uint8_t *)arena.data() + e.start;
      if (e.pid < 0) out += '-';
      decimal(e.pid < 0 ? (uint64_t)(-(int64_t)e.pid) : (uint64_t)e.pid);
      out += '\t';
      out += opNames[e.op];
      out += '\t';
      if (IsPlain(path, e.len)) out.append((const char *)path, e.len);
      else {
        escaped.resize((size_t)e.len * 4);
        uint8_t *end = Escape(path, e.len, escaped.data());
        out.append((const char *)escaped.data(), (size_t)(end - escaped.data()));
      }
      out += '\t';
      decimal(e.count);
      out += '\n';
      if (int err = flush(false)) return err;
    }
    return flush(true);
  }

  // Whether the record at b[at, at + size) is one locateRecords (events.ts) accepts: its
  // type known and its blobs inside it.
  bool RecordOk(const uint8_t *b, size_t at, size_t size) const {
    const RecordType &t = types[U16At(b + at + 4)];
    if (!t.known) return false;
    uint64_t p = at + t.fixedEnd, limit = at + size;
    for (uint32_t i = 0; i < t.blobs; i++) {
      if (p + 4 > limit) return false;
      p += 4 + (uint64_t)U32At(b + p);
      if (p > limit) return false;
    }
    return true;
  }

  // locateRecords: the whole records of b[0, n) (up to an end mark or a cut record);
  // *bad is where a malformed one stops the walk, or -1. Calls each(offset) per record.
  template <typename F>
  size_t Locate(const uint8_t *b, size_t n, double *bad, F each) const {
    size_t at = 0, count = 0;
    *bad = -1;
    while (at + 24 <= n) {
      uint32_t size = U32At(b + at);
      if (size == 0) break;
      if (size % 8 != 0 || size < 24 || size > 65536 || (at + size <= n && !RecordOk(b, at, size))) {
        *bad = (double)at;
        break;
      }
      if (at + size > n) break;
      each(at);
      count++;
      at += size;
    }
    return count;
  }

  // The access records of one process starting at rec[0] (n of them, back to back) as
  // far as they take the direct path: see src/record/access-writer.ts emit.
  uint32_t Emit(const uint8_t *rec, uint32_t n, uint8_t *chunk, size_t cap, const double *proc, size_t procLen) {
    uint32_t pid = (uint32_t)proc[0];
    uint64_t seqId = (uint64_t)proc[1], nameIid = (uint64_t)proc[2], pathIid = (uint64_t)proc[3];
    const double *fieldIids = proc + 4;
    size_t threadsAt = 4 + fields.size();
    size_t nThreads = (size_t)proc[threadsAt];
    const double *threads = proc + threadsAt + 1;
    if (threadsAt + 1 + 2 * nThreads > procLen) nThreads = 0;
    uint64_t lastTime = (uint64_t)io[IO_LAST_TIME];
    size_t pos = (size_t)io[IO_POS];
    double events = 0, packets = 0, repeats = 0;
    bool emitted = false;
    Reason reason = DONE;
    uint32_t done = 0;
    for (; done < n; rec += U32At(rec)) {
      if (U16At(rec + 4) != accessCode || (U16At(rec + 6) & FLAG_TRUNCATED) || U32At(rec + 8) != pid) {
        reason = OTHER;
        break;
      }
      double tid = (double)U32At(rec + 12);
      double track = -1;
      for (size_t t = 0; t < nThreads; t++)
        if (threads[2 * t] == tid) {
          track = threads[2 * t + 1];
          break;
        }
      if (track < 0) {
        reason = OTHER;
        break;
      }
      const uint8_t *path = rec + pathLengthAt + 4;
      uint32_t pathLen = U32At(rec + pathLengthAt);
      // the packet's largest size: framing and numbers, and the path escaped
      size_t need = 256 + 24 * fields.size() + 4 * (size_t)pathLen;
      if (pos + need > cap) {
        reason = ROOM;
        io[IO_NEED] = (double)need;
        break;
      }
      if (withIndex) {
        int64_t result = (int64_t)ValueAt(rec + resultAt, I64);
        uint32_t count = U32At(rec + countAt);
        bool fresh = !IsOwn(path, pathLen) && Add((int32_t)pid, IndexOp(U32At(rec + opAt), result), path, pathLen, count > 1 ? count : 1);
        if (!fresh) {
          // the first access of this path by this process is in the trace; the index counts the rest
          repeats++;
          done++;
          continue;
        }
      }
      events++;
      uint64_t time = (uint64_t)ValueAt(rec + 16, U64);
      if (time < lastTime) time = lastTime;
      uint8_t *p = Tag(chunk + pos, TRACE_PACKET, 2);
      uint8_t *body = p + 2;
      p = Uint(body, P_TIMESTAMP, time);
      p = Uint(p, P_SEQUENCE_ID, seqId);
      p = Uint(p, P_SEQUENCE_FLAGS, NEEDS_INCREMENTAL_STATE);
      uint8_t *eventLen, *annLen;
      p = BeginMessage(p, P_TRACK_EVENT, &eventLen);
      p = Uint(p, TE_TYPE, TYPE_INSTANT);
      p = Uint(p, TE_TRACK_UUID, (uint64_t)track);
      p = Uint(p, TE_NAME_IID, nameIid);
      for (size_t i = 0; i < fields.size(); i++) {
        p = BeginMessage(p, TE_DEBUG_ANNOTATIONS, &annLen);
        p = Uint(p, DA_NAME_IID, (uint64_t)fieldIids[i]);
        p = AnnotationNumber(p, ValueAt(rec + fields[i].at, fields[i].type), fields[i].type == I32 || fields[i].type == I64);
        EndMessage(annLen, p);
      }
      p = BeginMessage(p, TE_DEBUG_ANNOTATIONS, &annLen);
      p = Uint(p, DA_NAME_IID, pathIid);
      p = Tag(p, DA_STRING_VALUE, 2);
      if (IsPlain(path, pathLen)) {
        p = Varint(p, pathLen);
        memcpy(p, path, pathLen);
        p += pathLen;
      } else {
        // the escaped text's length comes first: escape after the room a varint of the
        // largest length takes, then move it down
        uint8_t *text = p + 5;
        uint8_t *end = Escape(path, pathLen, text);
        size_t len = (size_t)(end - text);
        p = Varint(p, len);
        memmove(p, text, len);
        p += len;
      }
      EndMessage(annLen, p);
      EndMessage(eventLen, p);
      // the packet's length as the shortest varint (ProtoWriter.endBytes): room for two
      // bytes was kept, the body moves if it needs another size
      size_t len = (size_t)(p - body);
      uint8_t lenBytes[10];
      size_t lenSize = (size_t)(Varint(lenBytes, len) - lenBytes);
      if (lenSize != 2) memmove(body - 2 + lenSize, body, len);
      memcpy(body - 2, lenBytes, lenSize);
      pos = (size_t)(body - 2 + lenSize + len - chunk);
      lastTime = time;
      emitted = true;
      packets++;
      done++;
      if (pos >= chunkBytes) {
        reason = FULL;
        break;
      }
    }
    io[IO_LAST_TIME] = (double)lastTime;
    io[IO_POS] = (double)pos;
    io[IO_EVENTS] = events;
    io[IO_PACKETS] = packets;
    io[IO_REPEATS] = repeats;
    io[IO_REASON] = reason;
    io[IO_EMITTED] = emitted ? 1 : 0;
    return done;
  }
};

void FreeWriter(Napi::Env, AccessWriter *w) { delete w; }

AccessWriter *WriterOf(const Napi::CallbackInfo &info) { return info[0].As<Napi::External<AccessWriter>>().Data(); }

// accessWriterNew({ withIndex, accessCode, layout: Int32Array [op, result, count,
// pathLength, then (at, type) per field], opCodes: Uint8Array, statCode, missingCode,
// opNames: string[], ownPrefix: Buffer, chunkBytes, io: Float64Array })
Napi::Value New(const Napi::CallbackInfo &info) {
  Napi::Object o = info[0].As<Napi::Object>();
  auto *w = new AccessWriter();
  w->withIndex = o.Get("withIndex").ToBoolean();
  w->accessCode = (uint16_t)o.Get("accessCode").As<Napi::Number>().Uint32Value();
  Napi::Int32Array layout = o.Get("layout").As<Napi::Int32Array>();
  w->opAt = (uint32_t)layout[0];
  w->resultAt = (uint32_t)layout[1];
  w->countAt = (uint32_t)layout[2];
  w->pathLengthAt = (uint32_t)layout[3];
  for (size_t i = 4; i + 1 < layout.ElementLength(); i += 2) w->fields.push_back(Field{(uint32_t)layout[i], layout[i + 1]});
  Napi::Uint8Array opCodes = o.Get("opCodes").As<Napi::Uint8Array>();
  w->opCodes.assign(opCodes.Data(), opCodes.Data() + opCodes.ElementLength());
  w->statCode = (uint8_t)o.Get("statCode").As<Napi::Number>().Uint32Value();
  w->missingCode = (uint8_t)o.Get("missingCode").As<Napi::Number>().Uint32Value();
  Napi::Array names = o.Get("opNames").As<Napi::Array>();
  for (uint32_t i = 0; i < names.Length(); i++) w->opNames.push_back(names.Get(i).As<Napi::String>().Utf8Value());
  Napi::Buffer<uint8_t> own = o.Get("ownPrefix").As<Napi::Buffer<uint8_t>>();
  w->ownPrefix.assign((const char *)own.Data(), own.Length());
  w->chunkBytes = o.Get("chunkBytes").As<Napi::Number>().Uint32Value();
  Napi::Int32Array types = o.Get("recordTypes").As<Napi::Int32Array>();
  for (size_t i = 0; i + 2 < types.ElementLength(); i += 3) {
    AccessWriter::RecordType &t = w->types[(uint16_t)types[i]];
    t.fixedEnd = (uint32_t)types[i + 1];
    t.blobs = (uint32_t)types[i + 2];
    t.known = true;
  }
  Napi::Float64Array io = o.Get("io").As<Napi::Float64Array>();
  if (io.ElementLength() < IO_SIZE) {
    delete w;
    Napi::TypeError::New(info.Env(), "accessWriterNew: io needs 8 slots").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  w->ioRef = Napi::Persistent(io);
  w->io = io.Data();
  return Napi::External<AccessWriter>::New(info.Env(), w, FreeWriter);
}

// accessWriterAdd(w, pid, opCode, buf, start, end, times): true when the entry is new.
Napi::Value Add(const Napi::CallbackInfo &info) {
  AccessWriter *w = WriterOf(info);
  Napi::Uint8Array buf = info[3].As<Napi::Uint8Array>();
  size_t start = info[4].As<Napi::Number>().Uint32Value(), end = info[5].As<Napi::Number>().Uint32Value();
  if (end > buf.ElementLength() || start > end) {
    Napi::RangeError::New(info.Env(), "accessWriterAdd: path outside its buffer").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  bool fresh = w->Add(info[1].As<Napi::Number>().Int32Value(), (uint8_t)info[2].As<Napi::Number>().Uint32Value(), buf.Data() + start,
                      end - start, (uint64_t)info[6].As<Napi::Number>().DoubleValue());
  return Napi::Boolean::New(info.Env(), fresh);
}

Napi::Value Size(const Napi::CallbackInfo &info) { return Napi::Number::New(info.Env(), (double)WriterOf(info)->entries.size()); }

// accessWriterWriteIndex(w, fd, header)
Napi::Value WriteIndex(const Napi::CallbackInfo &info) {
  int err = WriterOf(info)->WriteIndex(info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::String>().Utf8Value());
  if (err) return ThrowErrno(info.Env(), "write accesses.tsv", err);
  return info.Env().Undefined();
}

// accessWriterEmit(w, records, at, n, chunk, proc): records consumed; the rest in io.
// The n records at records[at...] are whole (located by locateRecords).
Napi::Value Emit(const Napi::CallbackInfo &info) {
  AccessWriter *w = WriterOf(info);
  Napi::Uint8Array records = info[1].As<Napi::Uint8Array>();
  uint32_t at = info[2].As<Napi::Number>().Uint32Value();
  uint32_t n = info[3].As<Napi::Number>().Uint32Value();
  Napi::Uint8Array chunk = info[4].As<Napi::Uint8Array>();
  Napi::Float64Array proc = info[5].As<Napi::Float64Array>();
  if (at > records.ElementLength() || (double)w->io[IO_POS] > (double)chunk.ElementLength() || proc.ElementLength() < 5 + w->fields.size()) {
    Napi::RangeError::New(info.Env(), "accessWriterEmit: bad arguments").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  uint32_t done = w->Emit(records.Data() + at, n, chunk.Data(), chunk.ElementLength(), proc.Data(), proc.ElementLength());
  return Napi::Number::New(info.Env(), done);
}

// accessWriterLocate(w, records): [offsets Uint32Array, times Float64Array, bad] for the
// whole records in records (events.ts locateRecords); bad: the offset of a malformed
// record that stopped the walk, or -1.
Napi::Value Locate(const Napi::CallbackInfo &info) {
  AccessWriter *w = WriterOf(info);
  Napi::Uint8Array records = info[1].As<Napi::Uint8Array>();
  const uint8_t *b = records.Data();
  size_t n = records.ElementLength();
  double bad;
  size_t count = w->Locate(b, n, &bad, [](size_t) {});
  Napi::Uint32Array offsets = Napi::Uint32Array::New(info.Env(), count);
  Napi::Float64Array times = Napi::Float64Array::New(info.Env(), count);
  uint32_t *o = offsets.Data();
  double *t = times.Data();
  size_t i = 0;
  w->Locate(b, n, &bad, [&](size_t at) {
    o[i] = (uint32_t)at;
    t[i] = ValueAt(b + at + 16, U64);
    i++;
  });
  Napi::Array out = Napi::Array::New(info.Env(), 3);
  out.Set(0u, offsets);
  out.Set(1u, times);
  out.Set(2u, Napi::Number::New(info.Env(), bad));
  return out;
}

}  // namespace

void InitAccesses(Napi::Env env, Napi::Object exports) {
  exports.Set("accessWriterNew", Napi::Function::New(env, New));
  exports.Set("accessWriterAdd", Napi::Function::New(env, Add));
  exports.Set("accessWriterSize", Napi::Function::New(env, Size));
  exports.Set("accessWriterWriteIndex", Napi::Function::New(env, WriteIndex));
  exports.Set("accessWriterEmit", Napi::Function::New(env, Emit));
  exports.Set("accessWriterLocate", Napi::Function::New(env, Locate));
}

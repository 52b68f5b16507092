// The merger's hot path: access records (the bulk of a trace: one per open, stat or
// probe) turned into the access index (src/record/accesses.ts) and Perfetto packets
// (src/actors/merger.ts emitAccess), a run of records per call. The bytes written are
// exactly those of the TypeScript implementation, which stays the reference: the record
// layout, operation names and the like come from it at creation, nothing is restated here.
#include <cerrno>
#include <cstdint>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include "addon.h"
#include "uwrx_hash.h"
#include "../common/escape.h"

namespace {

// Field types of the record schema (events.ts FieldType), as AccessWriter's layout codes.
enum FieldType : int32_t { U32 = 0, I32 = 1, I64 = 2, U64 = 3 };

// The io slots shared with TypeScript (src/record/access-writer.ts IO). In: pos (the
// chunk's length). Out: pos, and what the call wrote: events, packets, repeats.
enum Io { IO_POS = 0, IO_EVENTS, IO_PACKETS, IO_REPEATS, IO_SIZE = 8 };

// Perfetto field numbers and flags (src/protocol/perfetto.ts).
constexpr uint32_t TRACE_PACKET = 1, P_PROCESS_TREE = 2, P_TIMESTAMP = 8, P_SEQUENCE_ID = 10, P_TRACK_EVENT = 11,
                   P_INTERNED_DATA = 12, P_SEQUENCE_FLAGS = 13, P_TRACK_DESCRIPTOR = 60, P_FIRST_PACKET_ON_SEQUENCE = 87;
constexpr uint32_t TE_DEBUG_ANNOTATIONS = 4, TE_TYPE = 9, TE_NAME_IID = 10, TE_TRACK_UUID = 11;
constexpr uint32_t DA_NAME_IID = 1, DA_BOOL_VALUE = 2, DA_UINT_VALUE = 3, DA_INT_VALUE = 4, DA_STRING_VALUE = 6, DA_ARRAY_VALUES = 12;
constexpr uint32_t TD_UUID = 1, TD_PROCESS = 3, TD_THREAD = 4, TD_PARENT_UUID = 5;
constexpr uint32_t PD_PID = 1, PD_CMDLINE = 2, PD_PROCESS_NAME = 6, THD_PID = 1, THD_TID = 2, THD_THREAD_NAME = 5;
constexpr uint32_t ID_EVENT_NAMES = 2, ID_DEBUG_ANNOTATION_NAMES = 3, IN_IID = 1, IN_NAME = 2;
constexpr uint32_t PT_PROCESSES = 1, PTP_PID = 1, PTP_PPID = 2, PTP_CMDLINE = 3;
constexpr uint64_t INCREMENTAL_STATE_CLEARED = 1, NEEDS_INCREMENTAL_STATE = 2, TYPE_SLICE_BEGIN = 1, TYPE_SLICE_END = 2, TYPE_INSTANT = 3;
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

// The record's escaping (src/native/common/escape.c, as escape.ts escapeBytes).
inline uint8_t *Escape(const uint8_t *b, size_t n, uint8_t *out) { return uwrx_escape(b, n, out); }

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
  // (a u64 field near 2^64 rounds up to it as a double: kept in range, not undefined)
  return Uint(p, DA_UINT_VALUE, v <= 0 ? 0 : v >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)v);
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
  // every record type's fixed part (header included, 8-aligned) and number of blobs, by
  // code up to the largest known one: the codes are small, and a table of all 65536 (768
  // KB, zeroed: page faults) cost some 4 ms of each run's start
  struct RecordType {
    uint32_t fixedEnd = 0;
    uint32_t blobs = 0;
    bool known = false;
  };
  std::vector<RecordType> types;
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

  // A hash of (pid, op, path) (uwrx_hash.h; only this table sees it).
  static uint32_t Hash(int32_t pid, uint8_t op, const uint8_t *b, size_t n) {
    return (uint32_t)uwrx_hash_bytes((uint64_t)(uint32_t)pid << 8 | op, b, n);
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
    uint16_t code = U16At(b + at + 4);
    if (code >= types.size() || !types[code].known) return false;
    const RecordType &t = types[code];
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

  // the rest of the merger's record path (TraceWriter below), when asked for
  struct TraceWriter *trace = nullptr;
};

// A varint of a number as ProtoWriter.varint writes a JS number: negative ones as 64-bit
// two's complement, others by repeated division (the same bytes for every double).
inline uint8_t *NumberVarint(uint8_t *p, double v) {
  if (v < 0) return Varint(p, (uint64_t)(int64_t)v);
  if (v < 2147483648.0) return Varint(p, (uint64_t)v);
  while (v >= 128) {
    *p++ = (uint8_t)((uint32_t)std::fmod(v, 128.0) | 0x80);
    v = std::floor(v / 128);
  }
  *p++ = (uint8_t)v;
  return p;
}
inline uint8_t *Bytes(uint8_t *p, uint32_t field, const void *b, size_t n) {
  p = Varint(Tag(p, field, 2), n);
  memcpy(p, b, n);
  return p + n;
}
inline uint8_t *Bytes(uint8_t *p, uint32_t field, const std::string &s) { return Bytes(p, field, s.data(), s.size()); }
// A string field holding the escaped text of b[0, n) (escapeBytes).
inline uint8_t *Escaped(uint8_t *p, uint32_t field, const uint8_t *b, size_t n) {
  if (IsPlain(b, n)) return Bytes(p, field, b, n);
  p = Tag(p, field, 2);
  uint8_t *text = p + 5;
  uint8_t *end = uwrx_escape(b, n, text);
  size_t len = (size_t)(end - text);
  p = Varint(p, len);
  memmove(p, text, len);
  return p + len;
}
std::string EscapedText(const std::string &b) {
  std::string out(b.size() * 4, '\0');
  uint8_t *end = uwrx_escape((const uint8_t *)b.data(), b.size(), (uint8_t *)&out[0]);
  out.resize((size_t)(end - (uint8_t *)&out[0]));
  return out;
}
// Buffer.isUtf8: well-formed UTF-8 throughout.
bool IsUtf8(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n;) {
    if (b[i] < 0x80) {
      i++;
      continue;
    }
    size_t len = uwrx_utf8_len(b + i, n - i);
    if (!len) return false;
    i += len;
  }
  return true;
}

// The record path of the merger (src/actors/merger.ts emit and what it calls), in native
// code: each process's sequence with its interned names, its track and threads, its
// lifetime slice and the events held until it is named. Writes packets into the merger's
// chunk and calls back into TypeScript for room and to flush a full chunk, exactly where
// the TypeScript path would, so both write the same bytes.
struct TraceWriter {
  // what a record type's packet needs: its fields and blobs, and its role
  enum Kind : uint8_t { GENERIC, SPAWN, EXEC, EXIT, ACCESS, OUTPUT, CONNECT, OPEN, TRUNCATE, UNLINK, RENAME, MKDIR, RMDIR, CHMOD, CHOWN };
  struct NamedField {
    std::string name;
    uint32_t at;
    int32_t type;
  };
  struct Type {
    Kind kind = GENERIC;
    std::string name;
    std::vector<NamedField> fields;
    std::vector<std::string> blobs;
    uint32_t fixedEnd = 0;
  };
  struct Sequence {
    uint64_t id = 0;
    bool started = false;
    uint64_t lastTime = 0;
    std::vector<std::pair<std::string, uint32_t>> eventNames, annotationNames;
    // an access event's interned ids (its name, its fields', its path's), once all are
    std::vector<uint32_t> accessIids;
  };
  struct Proc {
    uint32_t pid = 0, ppid = 1;
    bool hasArgv = false, hasExecPath = false;
    std::vector<std::string> argv;
    std::string execPath;
    Sequence seq;
    uint64_t uuid = 0;
    bool described = false, sliceOpen = false;
    std::vector<std::string> held;
    std::vector<std::pair<uint32_t, uint64_t>> threads;
    uint64_t lastTime = 0;
  };
  // an annotation of an event: its name, and where its value comes from
  enum AnnKind : uint8_t { FIELD, NUMBER, STRING, ARGV, TEXT, BASE64, ADDRESS, TRUE };
  struct Ann {
    const std::string *name;
    AnnKind kind;
    double number;
    const uint8_t *bytes;
    size_t len;
    int32_t fieldType;
  };

  AccessWriter *index;  // the access index (and the writer's io), owned by the caller
  // the record types by code, up to the largest of the schema's: an index into typeList
  // (0: none of the schema's)
  std::vector<uint8_t> typeIndex;
  std::vector<Type> typeList = std::vector<Type>(1);
  const Type &TypeOf(const uint8_t *rec) const {
    uint16_t code = U16At(rec + 4);
    return typeList[code < typeIndex.size() ? typeIndex[code] : 0];
  }
  // index operation codes of the mutations (accesses.ts accessesOf)
  uint8_t opExec = 0, opWrite = 0, opDelete = 0, opRenameFrom = 0, opRenameTo = 0, opMkdir = 0, opRmdir = 0, opChmod = 0, opChown = 0;
  std::string namePid = "pid", nameStatus = "status", nameSignal = "signal", nameTruncated = "truncated", nameText, nameBase64;
  bool withOutputs = false;
  Napi::FunctionReference sync;  // (pos, need) => chunk backing; need 0: flush
  uint32_t sequenceBase = 1;
  uint64_t nextUuid = 1;
  std::vector<Proc *> procs;  // in order of first sight
  std::unordered_map<uint32_t, Proc *> byPid;
  // the chunk: written from pos, cap bytes of room
  uint8_t *chunk = nullptr;
  size_t cap = 0, pos = 0;
  Napi::Env env = nullptr;
  double events = 0, packets = 0, repeats = 0;
  std::vector<Ann> anns;
  std::vector<uint32_t> annIids;

  // Records waiting to be written (merger.ts Run): a delivery's records as it brought
  // them, cut wherever time goes back; written merged by (time, arrival).
  // (the records stay in the caller's buffer, kept alive by a reference: a copy of each
  // delivery cost page faults for every large one)
  struct Delivery {
    Napi::Reference<Napi::Uint8Array> keep;
    const uint8_t *bytes = nullptr;
    std::vector<uint32_t> offsets;
    std::vector<double> times;
  };
  struct Run {
    uint64_t order;
    std::shared_ptr<Delivery> d;
    size_t next, end;
    double time() const { return d->times[next]; }
  };
  std::vector<Run> runs;
  double pendingCount = 0, maxBuffered = 0, watermark = 0;
  uint64_t order = 0;
  Napi::FunctionReference onOutput;  // (records) => void: their output index entries
  // The output records written since the last call of onOutput, back to back: handed
  // over once per WriteOldest or OUTPUT_BATCH_MAX bytes (a JavaScript call and a Buffer
  // per write cost more than its packet: a program printing 50,000 lines)
  std::vector<uint8_t> outputBatch;
  static constexpr size_t OUTPUT_BATCH_MAX = 1 << 20;

  ~TraceWriter() {
    for (Proc *p : procs) delete p;
  }

  // Merger.records: the whole records of b[0, n) join the pending ones; bad: where a
  // malformed one stopped the walk, or -1.
  double Records(Napi::Uint8Array records) {
    const uint8_t *b = records.Data();
    size_t n = records.ElementLength();
    auto d = std::make_shared<Delivery>();
    d->keep = Napi::Persistent(records);
    d->bytes = b;
    double bad;
    index->Locate(b, n, &bad, [&](size_t at) {
      d->offsets.push_back((uint32_t)at);
      d->times.push_back(ValueAt(b + at + 16, U64));
    });
    size_t count = d->times.size(), start = 0;
    for (size_t i = 1; i <= count; i++) {
      if (i < count && d->times[i] >= d->times[i - 1]) continue;
      runs.push_back(Run{order++, d, start, i});
      start = i;
    }
    pendingCount += (double)count;
    if (pendingCount > 2 * maxBuffered) Advance(watermark);
    return bad;
  }

  static size_t UpperBound(const Run &r, double time) {
    size_t lo = r.next, hi = r.end;
    while (lo < hi) {
      size_t mid = (lo + hi) >> 1;
      if (r.d->times[mid] <= time) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  static size_t LowerBound(const Run &r, double time) {
    size_t lo = r.next, hi = r.end;
    while (lo < hi) {
      size_t mid = (lo + hi) >> 1;
      if (r.d->times[mid] < time) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  static bool Before(const Run *a, const Run *b) {
    double ta = a->time(), tb = b->time();
    return ta < tb || (ta == tb && a->order < b->order);
  }
  static void SiftDown(std::vector<Run *> &h, size_t i) {
    for (;;) {
      size_t l = 2 * i + 1, r = l + 1, m = i;
      if (l < h.size() && Before(h[l], h[m])) m = l;
      if (r < h.size() && Before(h[r], h[m])) m = r;
      if (m == i) return;
      std::swap(h[i], h[m]);
      i = m;
    }
  }

  // Merger.advance: every pending record at or before the watermark, in time order; the
  // oldest regardless when too many remain.
  void Advance(double w) {
    watermark = w;
    if (pendingCount == 0) return;
    double cut = 0;
    for (const Run &r : runs) cut += (double)(UpperBound(r, w) - r.next);
    if (pendingCount - cut > maxBuffered) cut = pendingCount - (double)((uint64_t)maxBuffered >> 1);
    WriteOldest(cut);
  }

  // Merger.writeOldest: the `count` oldest pending records, the runs merged through a
  // heap; a run keeps the turn while it stays the oldest.
  void WriteOldest(double count) {
    std::vector<Run *> heap;
    for (Run &r : runs)
      if (r.next < r.end) heap.push_back(&r);
    for (size_t i = heap.size() / 2; i-- > 0;) SiftDown(heap, i);
    double left = count;
    while (left > 0 && !heap.empty() && !env.IsExceptionPending()) {
      Run *run = heap[0];
      Run *second = heap.size() < 2 ? nullptr : heap.size() < 3 || !Before(heap[2], heap[1]) ? heap[1] : heap[2];
      size_t last = !second ? run->end : run->order < second->order ? UpperBound(*run, second->time()) : LowerBound(*run, second->time());
      size_t stop = std::min(last, run->next + (size_t)left);
      left -= (double)(stop - run->next);
      for (; run->next < stop && !env.IsExceptionPending(); run->next++) {
        const uint8_t *rec = run->d->bytes + run->d->offsets[run->next];
        if (withOutputs && TypeOf(rec).kind == OUTPUT) {
          outputBatch.insert(outputBatch.end(), rec, rec + U32At(rec));
          if (outputBatch.size() >= OUTPUT_BATCH_MAX) FlushOutputs();
        }
        if (!env.IsExceptionPending()) Emit(rec);  // (the flush may have thrown)
      }
      if (run->next < run->end) SiftDown(heap, 0);
      else {
        heap[0] = heap.back();
        heap.pop_back();
        if (!heap.empty()) SiftDown(heap, 0);
      }
    }
    pendingCount -= count;
    runs.erase(std::remove_if(runs.begin(), runs.end(), [](const Run &r) { return r.next >= r.end; }), runs.end());
    FlushOutputs();
  }

  // Hands the batched output records to onOutput.
  void FlushOutputs() {
    if (!outputBatch.empty() && !env.IsExceptionPending())
      onOutput.Call({Napi::Buffer<uint8_t>::Copy(env, outputBatch.data(), outputBatch.size())});
    outputBatch.clear();
  }

  void Attach(Napi::Env e, Napi::Uint8Array c) {
    env = e;
    chunk = c.Data();
    cap = c.ElementLength();
  }
  // The chunk's buffer as the callback left it. Should it fail (its exception then
  // ends the call), packets go to a scratch buffer, never past the chunk's end.
  void Backing(Napi::Value v, size_t need) {
    if (!env.IsExceptionPending() && v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
      Napi::Uint8Array c = v.As<Napi::Uint8Array>();
      if (pos + need <= c.ElementLength()) {
        chunk = c.Data();
        cap = c.ElementLength();
        return;
      }
    }
    scratch.assign(pos + need, 0);
    chunk = scratch.data();
    cap = scratch.size();
  }
  // room for a packet of at most `need` bytes
  void Ensure(size_t need) {
    if (pos + need <= cap) return;
    Backing(sync.Call({Napi::Number::New(env, (double)pos), Napi::Number::New(env, (double)need)}), need);
  }
  std::vector<uint8_t> scratch;

  Proc *ProcOf(uint32_t pid) {
    auto it = byPid.find(pid);
    if (it != byPid.end()) return it->second;
    Proc *p = new Proc();
    p->pid = pid;
    p->seq.id = (uint64_t)pid + sequenceBase;
    p->uuid = nextUuid++;
    procs.push_back(p);
    byPid[pid] = p;
    return p;
  }

  // The packet's start (room for a two-byte length kept) and its common fields.
  uint8_t *BeginPacket(Sequence &seq, uint64_t time, bool usesInterning, uint8_t **body) {
    uint8_t *p = Tag(chunk + pos, TRACE_PACKET, 2);
    *body = p + 2;
    p = Uint(*body, P_TIMESTAMP, time);
    p = Uint(p, P_SEQUENCE_ID, seq.id);
    uint64_t flags = usesInterning ? NEEDS_INCREMENTAL_STATE : 0;
    if (!seq.started) {
      flags |= INCREMENTAL_STATE_CLEARED;
      p = Uint(p, P_FIRST_PACKET_ON_SEQUENCE, 1);
      seq.started = true;
    }
    if (flags) p = Uint(p, P_SEQUENCE_FLAGS, flags);
    return p;
  }
  // The length as the shortest varint (ProtoWriter.endBytes); a full chunk is flushed.
  void EndPacket(Sequence &seq, uint64_t time, uint8_t *body, uint8_t *end) {
    if (time > seq.lastTime) seq.lastTime = time;
    size_t len = (size_t)(end - body);
    uint8_t lenBytes[10];
    size_t lenSize = (size_t)(Varint(lenBytes, len) - lenBytes);
    if (lenSize != 2) memmove(body - 2 + lenSize, body, len);
    memcpy(body - 2, lenBytes, lenSize);
    pos = (size_t)(body - 2 + lenSize + len - chunk);
    packets++;
    if (pos >= index->chunkBytes) {
      Napi::Value backing = sync.Call({Napi::Number::New(env, (double)pos), Napi::Number::New(env, 0)});
      pos = 0;
      Backing(backing, 0);
    }
  }

  static uint32_t Intern(std::vector<std::pair<std::string, uint32_t>> &names, const std::string &name, bool *added) {
    for (auto &e : names)
      if (e.first == name) return e.second;
    uint32_t iid = (uint32_t)names.size() + 1;
    names.emplace_back(name, iid);
    *added = true;
    return iid;
  }

  size_t ValueSize(const Ann &a) const {
    switch (a.kind) {
      case STRING: case ADDRESS: return 16 + 4 * a.len;
      case ARGV: return 16 + 16 * a.len;
      case TEXT: return 16 + a.len;
      case BASE64: return 16 + (a.len + 2) / 3 * 4;
      default: return 16;
    }
  }

  uint8_t *Value(uint8_t *p, const Ann &a) {
    switch (a.kind) {
      case FIELD: {
        // negative numbers of signed fields are -errno results and stay signed
        double v = (a.fieldType == I32 || a.fieldType == I64) && a.number < 0 ? a.number : a.number > 0 ? a.number : 0;
        return NumberVarint(Tag(p, v < 0 ? DA_INT_VALUE : DA_UINT_VALUE, 0), v);
      }
      case NUMBER: return NumberVarint(Tag(p, a.number < 0 ? DA_INT_VALUE : DA_UINT_VALUE, 0), a.number);
      case TRUE: return Uint(p, DA_BOOL_VALUE, 1);
      case STRING: return Escaped(p, DA_STRING_VALUE, a.bytes, a.len);
      case TEXT: return Bytes(p, DA_STRING_VALUE, a.bytes, a.len);
      case BASE64: {
        static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t n = (a.len + 2) / 3 * 4;
        p = Varint(Tag(p, DA_STRING_VALUE, 2), n);
        const uint8_t *b = a.bytes;
        size_t i = 0;
        for (; i + 3 <= a.len; i += 3) {
          uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
          *p++ = (uint8_t)digits[v >> 18], *p++ = (uint8_t)digits[(v >> 12) & 63], *p++ = (uint8_t)digits[(v >> 6) & 63], *p++ = (uint8_t)digits[v & 63];
        }
        if (a.len - i == 1) {
          uint32_t v = (uint32_t)b[i] << 16;
          *p++ = (uint8_t)digits[v >> 18], *p++ = (uint8_t)digits[(v >> 12) & 63], *p++ = '=', *p++ = '=';
        } else if (a.len - i == 2) {
          uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8;
          *p++ = (uint8_t)digits[v >> 18], *p++ = (uint8_t)digits[(v >> 12) & 63], *p++ = (uint8_t)digits[(v >> 6) & 63], *p++ = '=';
        }
        return p;
      }
      case ADDRESS: {
        // formatAddress: dotted IPv4, IPv6 as eight hex groups, anything else escaped
        char text[64];
        int n = -1;
        const uint8_t *b = a.bytes;
        if (a.number == 2 && a.len == 4) n = snprintf(text, sizeof text, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
        else if (a.number == 10 && a.len == 16) {
          n = 0;
          for (int g = 0; g < 8; g++) n += snprintf(text + n, sizeof text - (size_t)n, g ? ":%x" : "%x", (unsigned)(b[2 * g] << 8 | b[2 * g + 1]));
        }
        if (n < 0) return Escaped(p, DA_STRING_VALUE, b, a.len);
        return Bytes(p, DA_STRING_VALUE, text, (size_t)n);
      }
      case ARGV: {
        // splitArgv, each argument escaped
        const uint8_t *b = a.bytes;
        size_t start = 0;
        uint8_t *len;
        for (size_t i = 0; i <= a.len; i++) {
          if (i < a.len ? b[i] != 0 : start >= a.len) continue;
          p = BeginMessage(p, DA_ARRAY_VALUES, &len);
          p = Escaped(p, DA_STRING_VALUE, b + start, i - start);
          EndMessage(len, p);
          start = i + 1;
        }
        return p;
      }
    }
    return p;
  }

  // trackEvent: names new on the sequence interned in the packet, then the event.
  void TrackEvent(Sequence &seq, uint64_t time, uint64_t track, uint64_t type, const std::string *name, const std::vector<Ann> &annotations) {
    uint32_t nameIid = 0;
    bool newName = false, any = false;
    size_t need = 256;
    if (name) {
      nameIid = Intern(seq.eventNames, *name, &newName);
      need += name->size();
    }
    uint32_t firstNew = (uint32_t)seq.annotationNames.size() + 1;
    annIids.resize(annotations.size());
    for (size_t i = 0; i < annotations.size(); i++) {
      annIids[i] = Intern(seq.annotationNames, *annotations[i].name, &any);
      need += 48 + annotations[i].name->size() + ValueSize(annotations[i]);
    }
    Ensure(need);
    uint8_t *body, *len, *inner;
    uint8_t *p = BeginPacket(seq, time, true, &body);
    if (newName || any) {
      p = BeginMessage(p, P_INTERNED_DATA, &len);
      if (newName) {
        p = BeginMessage(p, ID_EVENT_NAMES, &inner);
        p = Uint(p, IN_IID, nameIid);
        p = Bytes(p, IN_NAME, *name);
        EndMessage(inner, p);
      }
      for (size_t i = 0; i < annotations.size(); i++) {
        uint32_t iid = annIids[i];
        if (iid < firstNew) continue;
        bool first = true;
        for (size_t k = 0; k < i && first; k++) first = annIids[k] != iid;
        if (!first) continue;
        p = BeginMessage(p, ID_DEBUG_ANNOTATION_NAMES, &inner);
        p = Uint(p, IN_IID, iid);
        p = Bytes(p, IN_NAME, *annotations[i].name);
        EndMessage(inner, p);
      }
      EndMessage(len, p);
    }
    p = BeginMessage(p, P_TRACK_EVENT, &len);
    p = Uint(p, TE_TYPE, type);
    p = Uint(p, TE_TRACK_UUID, track);
    if (nameIid) p = Uint(p, TE_NAME_IID, nameIid);
    for (size_t i = 0; i < annotations.size(); i++) {
      p = BeginMessage(p, TE_DEBUG_ANNOTATIONS, &inner);
      p = Uint(p, DA_NAME_IID, annIids[i]);
      p = Value(p, annotations[i]);
      EndMessage(inner, p);
    }
    EndMessage(len, p);
    EndPacket(seq, time, body, p);
  }

  // processName: the base name of argv[0] (else the executable), escaped.
  std::string ProcessName(const Proc &proc) const {
    const std::string *exe = proc.hasArgv && !proc.argv.empty() ? &proc.argv[0] : proc.hasExecPath ? &proc.execPath : nullptr;
    if (!exe || exe->empty()) return "pid " + std::to_string(proc.pid);
    std::string s = EscapedText(*exe);
    size_t slash = s.rfind('/');
    std::string base = slash == std::string::npos ? s : s.substr(slash + 1);
    return base.empty() ? s : base;
  }

  uint64_t ThreadTrack(Proc &proc, uint32_t tid, uint64_t time) {
    for (auto &t : proc.threads)
      if (t.first == tid) return t.second;
    uint64_t uuid = nextUuid++;
    proc.threads.emplace_back(tid, uuid);
    std::string name = ProcessName(proc);
    if (tid != proc.pid) name += " [" + std::to_string(tid) + "]";
    Ensure(128 + name.size());
    uint8_t *body, *track, *thread;
    uint8_t *p = BeginPacket(proc.seq, time, false, &body);
    p = BeginMessage(p, P_TRACK_DESCRIPTOR, &track);
    p = Uint(p, TD_UUID, uuid);
    p = Uint(p, TD_PARENT_UUID, proc.uuid);
    p = BeginMessage(p, TD_THREAD, &thread);
    p = Uint(p, THD_PID, proc.pid);
    p = Uint(p, THD_TID, tid);
    p = Bytes(p, THD_THREAD_NAME, name);
    EndMessage(thread, p);
    EndMessage(track, p);
    EndPacket(proc.seq, time, body, p);
    return uuid;
  }

  // annotationsOf: every field and blob of the record, and whether it was cut.
  void AnnotationsOf(const uint8_t *rec, const Type &t) {
    anns.clear();
    for (const NamedField &f : t.fields) anns.push_back(Ann{&f.name, FIELD, ValueAt(rec + f.at, f.type), nullptr, 0, f.type});
    size_t at = t.fixedEnd;
    for (const std::string &b : t.blobs) {
      uint32_t n = U32At(rec + at);
      const uint8_t *bytes = rec + at + 4;
      at += 4 + (size_t)n;
      if (t.kind == EXEC && b == "argv") anns.push_back(Ann{&b, ARGV, 0, bytes, n, 0});
      else if (t.kind == OUTPUT && b == "data") {
        bool text = IsUtf8(bytes, n);
        anns.push_back(Ann{text ? &nameText : &nameBase64, text ? TEXT : BASE64, 0, bytes, n, 0});
      } else if (t.kind == CONNECT && b == "addr") anns.push_back(Ann{&b, ADDRESS, FieldNamed(rec, t, "family"), bytes, n, 0});
      else anns.push_back(Ann{&b, STRING, 0, bytes, n, 0});
    }
    if (U16At(rec + 6) & FLAG_TRUNCATED) anns.push_back(Ann{&nameTruncated, TRUE, 0, nullptr, 0, 0});
  }
  static double FieldNamed(const uint8_t *rec, const Type &t, const char *name) {
    for (const NamedField &f : t.fields)
      if (f.name == name) return ValueAt(rec + f.at, f.type);
    return 0;
  }
  // the bytes of the record's blob number i
  static std::string Blob(const uint8_t *rec, const Type &t, size_t i) {
    size_t at = t.fixedEnd;
    for (size_t k = 0; k < i; k++) at += 4 + (size_t)U32At(rec + at);
    return std::string((const char *)rec + at + 4, U32At(rec + at));
  }
  static const uint8_t *BlobAt(const uint8_t *rec, const Type &t, size_t i, uint32_t *n) {
    size_t at = t.fixedEnd;
    for (size_t k = 0; k < i; k++) at += 4 + (size_t)U32At(rec + at);
    *n = U32At(rec + at);
    return rec + at + 4;
  }

  void WriteEvent(Proc &proc, const uint8_t *rec) {
    const Type &t = TypeOf(rec);
    // its own time, also when it is older than the sequence's last (Merger.writeEvent)
    uint64_t time = (uint64_t)ValueAt(rec + 16, U64);
    if (time > proc.lastTime) proc.lastTime = time;
    uint64_t track = ThreadTrack(proc, U32At(rec + 12), time);
    if (t.kind == ACCESS && !(U16At(rec + 6) & FLAG_TRUNCATED) && AccessIids(proc.seq, t)) return WriteAccess(proc.seq, rec, t, time, track);
    AnnotationsOf(rec, t);
    TrackEvent(proc.seq, time, track, TYPE_INSTANT, &t.name, anns);
    if (t.kind == EXIT && proc.sliceOpen) {
      std::vector<Ann> end = {Ann{&nameStatus, NUMBER, FieldNamed(rec, t, "status"), nullptr, 0, 0},
                              Ann{&nameSignal, NUMBER, FieldNamed(rec, t, "signal"), nullptr, 0, 0}};
      EndSlice(proc, time, end);
    }
  }

  // The sequence's ids of an access event's names, once the first access event has
  // interned them all (most of a file storm's records then skip interning).
  static bool AccessIids(Sequence &seq, const Type &t) {
    if (!seq.accessIids.empty()) return true;
    auto find = [](const std::vector<std::pair<std::string, uint32_t>> &names, const std::string &name) -> uint32_t {
      for (auto &e : names)
        if (e.first == name) return e.second;
      return 0;
    };
    std::vector<uint32_t> iids = {find(seq.eventNames, t.name)};
    for (const NamedField &f : t.fields) iids.push_back(find(seq.annotationNames, f.name));
    for (const std::string &b : t.blobs) iids.push_back(find(seq.annotationNames, b));
    for (uint32_t iid : iids)
      if (iid == 0) return false;
    seq.accessIids = std::move(iids);
    return true;
  }

  // What TrackEvent writes for an access record whose names are all interned.
  void WriteAccess(Sequence &seq, const uint8_t *rec, const Type &t, uint64_t time, uint64_t track) {
    size_t need = 256 + 48 * t.fields.size();
    size_t at = t.fixedEnd;
    for (size_t b = 0; b < t.blobs.size(); b++) {
      need += 48 + 4 * (size_t)U32At(rec + at);
      at += 4 + (size_t)U32At(rec + at);
    }
    Ensure(need);
    const uint32_t *iids = seq.accessIids.data();
    uint8_t *body, *event, *ann;
    uint8_t *p = BeginPacket(seq, time, true, &body);
    p = BeginMessage(p, P_TRACK_EVENT, &event);
    p = Uint(p, TE_TYPE, TYPE_INSTANT);
    p = Uint(p, TE_TRACK_UUID, track);
    p = Uint(p, TE_NAME_IID, iids[0]);
    size_t i = 1;
    for (const NamedField &f : t.fields) {
      p = BeginMessage(p, TE_DEBUG_ANNOTATIONS, &ann);
      p = Uint(p, DA_NAME_IID, iids[i++]);
      p = Value(p, Ann{&f.name, FIELD, ValueAt(rec + f.at, f.type), nullptr, 0, f.type});
      EndMessage(ann, p);
    }
    at = t.fixedEnd;
    for (size_t b = 0; b < t.blobs.size(); b++) {
      uint32_t n = U32At(rec + at);
      p = BeginMessage(p, TE_DEBUG_ANNOTATIONS, &ann);
      p = Uint(p, DA_NAME_IID, iids[i++]);
      p = Escaped(p, DA_STRING_VALUE, rec + at + 4, n);
      EndMessage(ann, p);
      at += 4 + (size_t)n;
    }
    EndMessage(event, p);
    EndPacket(seq, time, body, p);
  }

  void EndSlice(Proc &proc, uint64_t time, const std::vector<Ann> &annotations) {
    proc.sliceOpen = false;
    TrackEvent(proc.seq, time > proc.seq.lastTime ? time : proc.seq.lastTime, proc.uuid, TYPE_SLICE_END, nullptr, annotations);
  }

  void Describe(Proc &proc) {
    proc.described = true;
    std::vector<std::string> held;
    held.swap(proc.held);
    uint64_t start = held.empty() ? proc.lastTime : (uint64_t)ValueAt((const uint8_t *)held[0].data() + 16, U64);
    std::string name = ProcessName(proc);
    size_t need = 128 + 4 * name.size();
    for (const std::string &a : proc.argv) need += 16 + 4 * a.size();
    Ensure(need);
    uint8_t *body, *track, *process;
    uint8_t *p = BeginPacket(proc.seq, start, false, &body);
    p = BeginMessage(p, P_TRACK_DESCRIPTOR, &track);
    p = Uint(p, TD_UUID, proc.uuid);
    p = BeginMessage(p, TD_PROCESS, &process);
    p = Uint(p, PD_PID, proc.pid);
    for (const std::string &a : proc.argv) p = Escaped(p, PD_CMDLINE, (const uint8_t *)a.data(), a.size());
    p = Bytes(p, PD_PROCESS_NAME, name);
    EndMessage(process, p);
    EndMessage(track, p);
    EndPacket(proc.seq, start, body, p);
    std::vector<Ann> pid = {Ann{&namePid, NUMBER, (double)proc.pid, nullptr, 0, 0}};
    TrackEvent(proc.seq, start, proc.uuid, TYPE_SLICE_BEGIN, &name, pid);
    proc.sliceOpen = true;
    proc.lastTime = start;
    for (const std::string &r : held) WriteEvent(proc, (const uint8_t *)r.data());
  }

  // The access index entries of a record; for an access record, whether it is a first
  // (a repeat, or one of uwrx's own files, is counted there and not written).
  bool AddAccesses(const uint8_t *rec, const Type &t) {
    int32_t pid = (int32_t)U32At(rec + 8);
    uint32_t n;
    const uint8_t *b;
    auto add = [&](uint8_t op, size_t blob) {
      b = BlobAt(rec, t, blob, &n);
      index->Add(pid, op, b, n, 1);
    };
    switch (t.kind) {
      case ACCESS: {
        b = BlobAt(rec, t, 0, &n);
        if (index->IsOwn(b, n)) return false;
        int64_t result = (int64_t)ValueAt(rec + index->resultAt, I64);
        uint32_t count = U32At(rec + index->countAt);
        return index->Add(pid, index->IndexOp(U32At(rec + index->opAt), result), b, n, count > 1 ? count : 1);
      }
      case EXEC:
        if (FieldNamed(rec, t, "result") >= 0) add(opExec, 0);
        return true;
      case OPEN: case TRUNCATE: add(opWrite, 0); return true;
      case UNLINK: add(opDelete, 0); return true;
      case RENAME: add(opRenameFrom, 0), add(opRenameTo, 1); return true;
      case MKDIR: add(opMkdir, 0); return true;
      case RMDIR: add(opRmdir, 0); return true;
      case CHMOD: add(opChmod, 0); return true;
      case CHOWN: add(opChown, 0); return true;
      default: return true;
    }
  }

  // emit: one record.
  void Emit(const uint8_t *rec) {
    const Type &t = TypeOf(rec);
    if (index->withIndex && !AddAccesses(rec, t) && t.kind == ACCESS) {
      repeats++;
      return;
    }
    events++;
    Proc &proc = *ProcOf(U32At(rec + 8));
    if (t.kind == SPAWN && FieldNamed(rec, t, "thread") == 0) {
      Proc &child = *ProcOf((uint32_t)FieldNamed(rec, t, "child"));
      if (child.ppid == 1) child.ppid = proc.pid;
      if (child.lastTime == 0) child.lastTime = (uint64_t)ValueAt(rec + 16, U64);
      if (!child.hasArgv && proc.hasArgv) {
        child.hasArgv = true;
        child.argv = proc.argv;
        child.hasExecPath = proc.hasExecPath;
        child.execPath = proc.execPath;
      }
    }
    bool named = t.kind == EXEC && FieldNamed(rec, t, "result") >= 0;
    if (named && !proc.described) {
      uint32_t n;
      const uint8_t *b = BlobAt(rec, t, 1, &n);
      proc.argv.clear();
      size_t start = 0;
      for (size_t i = 0; i < n; i++)
        if (b[i] == 0) {
          proc.argv.emplace_back((const char *)b + start, i - start);
          start = i + 1;
        }
      if (start < n) proc.argv.emplace_back((const char *)b + start, n - start);
      proc.hasArgv = true;
      proc.execPath = Blob(rec, t, 0);
      proc.hasExecPath = true;
    }
    if (!proc.described) {
      proc.held.emplace_back((const char *)rec, U32At(rec));
      if (named || t.kind == EXIT || proc.held.size() >= 64) Describe(proc);
      return;
    }
    WriteEvent(proc, rec);
  }

  // finish: every process described, open slices ended, then the process tree on the
  // merger's own sequence.
  void Finish(uint64_t globalSequence, uint64_t globalLastTime) {
    for (Proc *proc : procs) {
      if (!proc->described) Describe(*proc);
      if (proc->sliceOpen) EndSlice(*proc, proc->lastTime, {});
    }
    uint64_t time = globalLastTime;
    for (Proc *proc : procs)
      if (proc->lastTime > time) time = proc->lastTime;
    std::vector<Proc *> sorted = procs;
    std::sort(sorted.begin(), sorted.end(), [](Proc *a, Proc *b) { return a->pid < b->pid; });
    size_t need = 256;
    for (Proc *proc : sorted) {
      need += 64;
      for (const std::string &a : proc->argv) need += 16 + 4 * a.size();
    }
    Ensure(need);
    Sequence global;
    global.id = globalSequence;
    global.started = true;
    global.lastTime = globalLastTime;
    uint8_t *body, *tree, *entry;
    uint8_t *p = BeginPacket(global, time, false, &body);
    p = BeginMessage(p, P_PROCESS_TREE, &tree);
    for (Proc *proc : sorted) {
      p = BeginMessage(p, PT_PROCESSES, &entry);
      p = Uint(p, PTP_PID, proc->pid);
      p = Uint(p, PTP_PPID, proc->ppid);
      for (const std::string &a : proc->argv) p = Escaped(p, PTP_CMDLINE, (const uint8_t *)a.data(), a.size());
      EndMessage(entry, p);
    }
    EndMessage(tree, p);
    EndPacket(global, time, body, p);
  }
};

void FreeWriter(Napi::Env, AccessWriter *w) {
  delete w->trace;
  delete w;
}

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
    uint16_t code = (uint16_t)types[i];
    if (code >= w->types.size()) w->types.resize((size_t)code + 1);
    AccessWriter::RecordType &t = w->types[code];
    t.fixedEnd = (uint32_t)types[i + 1];
    t.blobs = (uint32_t)types[i + 2];
    t.known = true;
  }
  if (o.Has("schema")) {
    // the whole record path (TraceWriter), not only the access index
    auto *t = new TraceWriter();
    t->index = w;
    w->trace = t;
    Napi::Array schema = o.Get("schema").As<Napi::Array>();
    static const std::pair<const char *, TraceWriter::Kind> kinds[] = {
        {"spawn", TraceWriter::SPAWN}, {"exec", TraceWriter::EXEC}, {"exit", TraceWriter::EXIT}, {"access", TraceWriter::ACCESS},
        {"output", TraceWriter::OUTPUT}, {"connect", TraceWriter::CONNECT}, {"open", TraceWriter::OPEN}, {"truncate", TraceWriter::TRUNCATE},
        {"unlink", TraceWriter::UNLINK}, {"rename", TraceWriter::RENAME}, {"mkdir", TraceWriter::MKDIR}, {"rmdir", TraceWriter::RMDIR},
        {"chmod", TraceWriter::CHMOD}, {"chown", TraceWriter::CHOWN}};
    for (uint32_t i = 0; i < schema.Length(); i++) {
      Napi::Object d = schema.Get(i).As<Napi::Object>();
      if (t->typeList.size() > 255) break;
      uint16_t code = (uint16_t)d.Get("code").As<Napi::Number>().Uint32Value();
      if (code >= t->typeIndex.size()) t->typeIndex.resize((size_t)code + 1, 0);
      t->typeIndex[code] = (uint8_t)t->typeList.size();
      TraceWriter::Type &type = t->typeList.emplace_back();
      type.name = d.Get("name").As<Napi::String>().Utf8Value();
      for (auto &k : kinds)
        if (type.name == k.first) type.kind = k.second;
      type.fixedEnd = d.Get("fixedEnd").As<Napi::Number>().Uint32Value();
      Napi::Array fields = d.Get("fields").As<Napi::Array>();
      for (uint32_t f = 0; f < fields.Length(); f++) {
        Napi::Object fo = fields.Get(f).As<Napi::Object>();
        type.fields.push_back({fo.Get("name").As<Napi::String>().Utf8Value(), fo.Get("at").As<Napi::Number>().Uint32Value(), fo.Get("type").As<Napi::Number>().Int32Value()});
      }
      Napi::Array blobs = d.Get("blobs").As<Napi::Array>();
      for (uint32_t b = 0; b < blobs.Length(); b++) type.blobs.push_back(blobs.Get(b).As<Napi::String>().Utf8Value());
    }
    auto opCode = [&](const char *name) {
      for (size_t i = 0; i < w->opNames.size(); i++)
        if (w->opNames[i] == name) return (uint8_t)i;
      return (uint8_t)0;
    };
    t->opExec = opCode("exec"), t->opWrite = opCode("write"), t->opDelete = opCode("delete"), t->opRenameFrom = opCode("rename_from");
    t->opRenameTo = opCode("rename_to"), t->opMkdir = opCode("mkdir"), t->opRmdir = opCode("rmdir"), t->opChmod = opCode("chmod");
    t->opChown = opCode("chown");
    t->nameText = o.Get("outputText").As<Napi::String>().Utf8Value();
    t->nameBase64 = o.Get("outputBase64").As<Napi::String>().Utf8Value();
    t->withOutputs = o.Get("withOutputs").ToBoolean();
    t->sequenceBase = o.Get("sequenceBase").As<Napi::Number>().Uint32Value();
    t->sync = Napi::Persistent(o.Get("sync").As<Napi::Function>());
    t->onOutput = Napi::Persistent(o.Get("output").As<Napi::Function>());
    t->maxBuffered = o.Get("maxBuffered").As<Napi::Number>().DoubleValue();
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

// accessWriterRows(w, from): { rows: Int32Array, paths: string[] }: the index's entries
// from `from` on, as scanAccessIndex reads them back from accesses.tsv: per entry its
// pid, its operation's index, its path's index in `paths`, which holds each distinct
// path of these entries once, escaped as the file has it. Entries never change place,
// so a reader takes the index in pieces while the run goes on (src/rebuild/capture.ts).
Napi::Value Rows(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  AccessWriter *w = WriterOf(info);
  size_t from = std::min((size_t)info[1].As<Napi::Number>().Uint32Value(), w->entries.size());
  size_t count = w->entries.size() - from;
  Napi::Int32Array rows = Napi::Int32Array::New(env, count * 3);
  Napi::Array paths = Napi::Array::New(env);
  std::unordered_map<std::string_view, uint32_t> index;
  std::vector<uint8_t> escaped;
  int32_t *out = rows.Data();
  for (size_t i = from; i < w->entries.size(); i++) {
    const Entry &e = w->entries[i];
    std::string_view path(w->arena.data() + e.start, e.len);
    auto [it, fresh] = index.emplace(path, (uint32_t)index.size());
    if (fresh) {
      const uint8_t *b = (const uint8_t *)path.data();
      if (IsPlain(b, e.len)) {
        paths.Set(it->second, Napi::String::New(env, path.data(), path.size()));
      } else {
        escaped.resize((size_t)e.len * 4);
        uint8_t *end = Escape(b, e.len, escaped.data());
        paths.Set(it->second, Napi::String::New(env, (const char *)escaped.data(), (size_t)(end - escaped.data())));
      }
    }
    *out++ = e.pid;
    *out++ = e.op;
    *out++ = (int32_t)it->second;
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("rows", rows);
  result.Set("paths", paths);
  return result;
}

TraceWriter *TraceOf(const Napi::CallbackInfo &info) {
  TraceWriter *t = WriterOf(info)->trace;
  if (!t) Napi::Error::New(info.Env(), "trace writer: created without a schema").ThrowAsJavaScriptException();
  return t;
}

// The io counts of one call, and the chunk's length after it.
void Report(TraceWriter *t) {
  double *io = t->index->io;
  io[IO_POS] = (double)t->pos;
  io[IO_EVENTS] = t->events;
  io[IO_PACKETS] = t->packets;
  io[IO_REPEATS] = t->repeats;
}
bool Begin(TraceWriter *t, const Napi::CallbackInfo &info, Napi::Value chunk) {
  t->Attach(info.Env(), chunk.As<Napi::Uint8Array>());
  if (t->index->io[IO_POS] > (double)t->cap) {
    Napi::RangeError::New(info.Env(), "trace writer: chunk position outside the chunk").ThrowAsJavaScriptException();
    return false;
  }
  t->pos = (size_t)t->index->io[IO_POS];
  t->events = t->packets = t->repeats = 0;
  return true;
}

// traceWriterRecords(w, records, chunk): Merger.records (records is kept until written); returns
// the offset of a malformed record that ended them, or -1. Packets may be written (when
// too many records wait), into chunk from io[IO_POS].
Napi::Value TraceRecords(const Napi::CallbackInfo &info) {
  TraceWriter *t = TraceOf(info);
  if (!t || !Begin(t, info, info[2])) return info.Env().Undefined();
  Napi::Uint8Array records = info[1].As<Napi::Uint8Array>();
  double bad = t->Records(records);
  Report(t);
  return Napi::Number::New(info.Env(), bad);
}

// traceWriterAdvance(w, watermark, chunk): Merger.advance.
Napi::Value TraceAdvance(const Napi::CallbackInfo &info) {
  TraceWriter *t = TraceOf(info);
  if (!t || !Begin(t, info, info[2])) return info.Env().Undefined();
  t->Advance(info[1].As<Napi::Number>().DoubleValue());
  Report(t);
  return info.Env().Undefined();
}

// traceWriterFinish(w, chunk, globalSequence, globalLastTime): the end of every process
// and the process tree, as TraceEmit writes; returns the number of processes.
Napi::Value TraceFinish(const Napi::CallbackInfo &info) {
  TraceWriter *t = TraceOf(info);
  if (!t || !Begin(t, info, info[1])) return info.Env().Undefined();
  t->Finish((uint64_t)info[2].As<Napi::Number>().DoubleValue(), (uint64_t)info[3].As<Napi::Number>().DoubleValue());
  Report(t);
  return Napi::Number::New(info.Env(), (double)t->procs.size());
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
  exports.Set("accessWriterRows", Napi::Function::New(env, Rows));
  exports.Set("accessWriterLocate", Napi::Function::New(env, Locate));
  exports.Set("traceWriterRecords", Napi::Function::New(env, TraceRecords));
  exports.Set("traceWriterAdvance", Napi::Function::New(env, TraceAdvance));
  exports.Set("traceWriterFinish", Napi::Function::New(env, TraceFinish));
}

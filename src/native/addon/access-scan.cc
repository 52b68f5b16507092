// The access index read back (src/record/accesses.ts accessIndexRows): a build's
// accesses.tsv has tens of thousands of lines, and the rebuild index reads them after the
// command, when V8 runs its code unoptimized (src/actors/compiler-tuning.ts). Here each
// line becomes three numbers and each distinct path one string. The file's format (header,
// operation names) comes from TypeScript, which also keeps the reference reading: any line
// that is not regular makes this answer null, and the TypeScript reading then gives the
// error naming the line.
#include <cstdint>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "addon.h"

namespace {

// A positive decimal without a leading zero (the index's pid and count); false otherwise.
// `value` is set when it fits an int32.
bool PositiveNumber(const char *p, size_t n, int64_t *value) {
  if (n == 0 || p[0] == '0') return false;
  int64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return false;
    if (v <= INT32_MAX) v = v * 10 + (p[i] - '0');
  }
  *value = v;
  return true;
}

// scanAccessIndex(text: Buffer, header: string, ops: string[]):
//   { paths: string[], rows: Int32Array } | null
// rows: pid, the operation's index in `ops`, the path's index in `paths`, per line in
// order; paths: each distinct path field once, as written (escaped text, UTF-8).
Napi::Value ScanAccessIndex(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Buffer<char> buf = info[0].As<Napi::Buffer<char>>();
  std::string header = info[1].As<Napi::String>();
  Napi::Array opNames = info[2].As<Napi::Array>();
  std::vector<std::string> ops;
  for (uint32_t i = 0; i < opNames.Length(); i++) ops.push_back(opNames.Get(i).As<Napi::String>());

  const char *text = buf.Data();
  const size_t size = buf.Length();
  if (size < header.size() || memcmp(text, header.data(), header.size()) != 0) return env.Null();

  std::vector<int32_t> rows;
  std::vector<std::string_view> paths;
  std::unordered_map<std::string_view, int32_t> pathIndex;
  for (size_t at = header.size(); at < size;) {
    const char *line = text + at;
    const char *nl = static_cast<const char *>(memchr(line, '\n', size - at));
    const size_t len = nl ? static_cast<size_t>(nl - line) : size - at;
    const char *tabs[3];
    int found = 0;
    for (const char *p = line; found < 4 && (p = static_cast<const char *>(memchr(p, '\t', len - (p - line)))); p++) {
      if (found == 3) return env.Null();  // a fifth field
      tabs[found++] = p;
    }
    if (found != 3) return env.Null();
    int64_t pid = 0, count = 0;
    if (!PositiveNumber(line, tabs[0] - line, &pid) || pid > INT32_MAX) return env.Null();
    if (!PositiveNumber(tabs[2] + 1, line + len - tabs[2] - 1, &count)) return env.Null();
    const std::string_view op(tabs[0] + 1, tabs[1] - tabs[0] - 1);
    int32_t opIndex = -1;
    for (size_t i = 0; i < ops.size() && opIndex < 0; i++) {
      if (op == ops[i]) opIndex = static_cast<int32_t>(i);
    }
    if (opIndex < 0) return env.Null();
    const std::string_view field(tabs[1] + 1, tabs[2] - tabs[1] - 1);
    auto [it, fresh] = pathIndex.try_emplace(field, static_cast<int32_t>(paths.size()));
    if (fresh) paths.push_back(field);
    rows.push_back(static_cast<int32_t>(pid));
    rows.push_back(opIndex);
    rows.push_back(it->second);
    at += len + 1;
  }

  Napi::Array pathList = Napi::Array::New(env, paths.size());
  for (size_t i = 0; i < paths.size(); i++) pathList.Set(i, Napi::String::New(env, paths[i].data(), paths[i].size()));
  Napi::Int32Array rowList = Napi::Int32Array::New(env, rows.size());
  if (!rows.empty()) memcpy(rowList.Data(), rows.data(), rows.size() * sizeof(int32_t));
  Napi::Object out = Napi::Object::New(env);
  out.Set("paths", pathList);
  out.Set("rows", rowList);
  return out;
}

}  // namespace

void InitAccessScan(Napi::Env env, Napi::Object exports) {
  exports.Set("scanAccessIndex", Napi::Function::New(env, ScanAccessIndex));
}

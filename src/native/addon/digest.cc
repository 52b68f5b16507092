// Digests and random bytes for the start of a command, without node:crypto: loading that
// module costs some 5-7 ms of CPU per command (OpenSSL's bindings and Node's streams
// behind them) for the few digests and seeds a run needs before its command starts.
// The digest is OpenSSL's, the copy inside Node that Node re-exports for addons.
#include <cerrno>
#include <cstring>
#include <sys/random.h>
#include <openssl/evp.h>
#include "addon.h"

// digest(algorithm: 'sha256' | 'sha1', parts: Array<Buffer | string>): Buffer, the digest
// of the parts one after the other (a string as UTF-8).
static Napi::Value Digest(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  const EVP_MD *md = name == "sha256" ? EVP_sha256() : name == "sha1" ? EVP_sha1() : nullptr;
  if (md == nullptr || !info[1].IsArray()) {
    Napi::TypeError::New(env, "digest: 'sha256' or 'sha1', and an array of Buffers and strings").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array parts = info[1].As<Napi::Array>();
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, md, nullptr) == 1;
  for (uint32_t i = 0; ok && i < parts.Length(); i++) {
    Napi::Value part = parts.Get(i);
    if (part.IsBuffer()) {
      auto buf = part.As<Napi::Buffer<unsigned char>>();
      ok = EVP_DigestUpdate(ctx, buf.Data(), buf.Length()) == 1;
    } else if (part.IsString()) {
      std::string text = part.As<Napi::String>().Utf8Value();
      ok = EVP_DigestUpdate(ctx, text.data(), text.size()) == 1;
    } else {
      EVP_MD_CTX_free(ctx);
      Napi::TypeError::New(env, "digest: a part is neither a Buffer nor a string").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  ok = ok && EVP_DigestFinal_ex(ctx, out, &size) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    Napi::Error::New(env, "digest: OpenSSL's digest failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<unsigned char>::Copy(env, out, size);
}

// randomBytes(n): Buffer of n bytes from the kernel's random source (getrandom(2), which
// blocks only until the pool is first initialised, as OpenSSL's seeding does).
static Napi::Value RandomBytes(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t n = info[0].As<Napi::Number>().Int64Value();
  if (n < 0 || n > 65536) {
    Napi::RangeError::New(env, "randomBytes: 0 to 65536 bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto buf = Napi::Buffer<unsigned char>::New(env, static_cast<size_t>(n));
  size_t got = 0;
  while (got < static_cast<size_t>(n)) {
    ssize_t r = getrandom(buf.Data() + got, static_cast<size_t>(n) - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ThrowErrno(env, "getrandom", errno);
    }
    got += static_cast<size_t>(r);
  }
  return buf;
}

void InitDigest(Napi::Env env, Napi::Object exports) {
  exports.Set("digest", Napi::Function::New(env, Digest));
  exports.Set("randomBytes", Napi::Function::New(env, RandomBytes));
}

// Native addon entry: each concept registers its functions from its own file.
#include <napi.h>
#include "addon.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitAccesses(env, exports);
  InitAccessScan(env, exports);
  InitFds(env, exports);
  InitTraceBuf(env, exports);
  InitXattr(env, exports);
  InitRemove(env, exports);
  InitProcess(env, exports);
  InitDirs(env, exports);
  InitSpawn(env, exports);
  InitDigest(env, exports);
  return exports;
}

NODE_API_MODULE(uwrx_native, Init)

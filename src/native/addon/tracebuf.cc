// Trace buffer primitives (mmap windows, hole punching) for the collector.
#include "addon.h"

void InitTraceBuf(Napi::Env env, Napi::Object exports) { (void)env; (void)exports; }

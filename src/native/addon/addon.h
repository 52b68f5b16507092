#pragma once
#include <napi.h>

// Throws a JS Error naming the operation and errno, the way every addon call reports failure.
Napi::Value ThrowErrno(Napi::Env env, const char *op, int err);

void InitAccesses(Napi::Env env, Napi::Object exports);
void InitAccessScan(Napi::Env env, Napi::Object exports);
void InitFds(Napi::Env env, Napi::Object exports);
void InitTraceBuf(Napi::Env env, Napi::Object exports);
void InitXattr(Napi::Env env, Napi::Object exports);
void InitRemove(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);
void InitDirs(Napi::Env env, Napi::Object exports);
void InitSpawn(Napi::Env env, Napi::Object exports);
void InitDigest(Napi::Env env, Napi::Object exports);

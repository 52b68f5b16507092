// node:crypto when first used, and the digests and random bytes a run needs before its
// command starts without it: loading node:crypto costs some 5-7 ms of CPU per command
// (OpenSSL's bindings and Node's streams behind them), more than all of a short run's
// hashing. The addon's SHA-256 is OpenSSL's too (Node's own copy), so digests are the same.
import type * as NodeCrypto from 'node:crypto';
import { native } from './native.js';

/** node:crypto, loaded on the first call. */
export function nodeCrypto(): typeof NodeCrypto {
  return process.getBuiltinModule('node:crypto');
}

/** The SHA-256 digest of the parts one after the other (a string as UTF-8), as
 * createHash('sha256') updated with each gives it. */
export function sha256(...parts: Array<string | Buffer>): Buffer {
  return native().digest('sha256', parts);
}

/** The same with SHA-1. */
export function sha1(...parts: Array<string | Buffer>): Buffer {
  return native().digest('sha1', parts);
}

/** `n` bytes from the kernel's random source, as crypto.randomBytes gives them. */
export function randomBytes(n: number): Buffer {
  return native().randomBytes(n);
}

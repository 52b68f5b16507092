// ld.so's own opens and stats, sent to the shim's hook (src/native/include/uwrx_recorder.h,
// "the dynamic linker's own calls"). The dynamic linker opens and stats the preload
// list, the recorder and every library before the recorder exists; in the combined ld.so
// of a run with the recorder, each of its openat and newfstatat system calls is
// rewritten: the 7 bytes `mov $imm32, %r32; syscall` that end the call become a `jmp` to
// a stub in the shim's segment (a fixed distance away in the same mapping), which runs
// the replaced `mov`, calls the hook and jumps back after the site. The `mov` is the
// call's number (`mov $SYS_openat, %eax`) or, when the number was loaded just before,
// another argument (`mov $AT_FDCWD, %edi`).
//
// A site is rewritten only when no direct branch of ld.so lands inside its 7 bytes (the
// scan decodes every byte offset as a possible branch: a false match only skips a site).
// The hook looks at %eax itself: a site taken for a file call by mistake is made as it
// was, only slower.

/** System calls the hook answers: openat and newfstatat (x86_64 numbers), and access,
 * with which ld.so asks whether /etc/ld.so.preload is there before it reads it; then
 * mmap and munmap, with which ld.so reads and drops the preload list (the hook hands it
 * a copy on its state page instead of a mapping), taken only while sites are left. */
export const HOOKED_SYSCALLS = [257, 262, 21, 9, 11] as const;
/** The numbers of HOOKED_SYSCALLS whose sites are taken first. */
const FILE_CALLS = 3;
/** x86_64 access: a combined ld.so whose access site is hooked reads uwrx's preload list
 * at /etc/ld.so.preload itself (ldso-combine.ts). */
export const SYS_ACCESS = 21;
/** As UWRX_SHIM_MAX_SITES, UWRX_LDSO_STUB_SIZE and UWRX_LDSO_STUBS_MAGIC (uwrx_control.h). */
export const MAX_SITES = 8;
export const STUB_SIZE = 32;
export const STUBS_MAGIC = Buffer.from('uwrx-ldso-stubs\0', 'latin1');
const SITE_SIZE = 7;
/** How far before a site's `mov $imm32, %r32` (not %eax) the number is looked for. */
const NUMBER_BEFORE = 16;

export interface SyscallSite {
  /** Offset of the site (its `mov`) in the searched buffer. */
  at: number;
  /** Its original 7 bytes. */
  code: Buffer;
  /** The system call it makes. */
  nr: number;
}

const movEax = (nr: number): Buffer => {
  const b = Buffer.from([0xb8, 0, 0, 0, 0]);
  b.writeUInt32LE(nr, 1);
  return b;
};

/** Offsets in [start, end) that some direct jump, call or conditional branch targets. */
function branchTargets(code: Buffer, start: number, end: number): Set<number> {
  const targets = new Set<number>();
  for (let i = start; i < end; i++) {
    const b = code[i]!;
    let t = -1;
    if ((b === 0xeb || (b >= 0x70 && b <= 0x7f) || (b >= 0xe0 && b <= 0xe3)) && i + 2 <= end) t = i + 2 + code.readInt8(i + 1);
    else if ((b === 0xe8 || b === 0xe9) && i + 5 <= end) t = i + 5 + code.readInt32LE(i + 1);
    else if (b === 0x0f && i + 6 <= end && code[i + 1]! >= 0x80 && code[i + 1]! <= 0x8f) t = i + 6 + code.readInt32LE(i + 2);
    if (t >= start && t < end) targets.add(t);
  }
  return targets;
}

/** `mov $imm32, %r32` for %eax, %ecx, %edx, %ebx, %ebp, %esi, %edi (not %esp). */
const isMovImm32 = (b: number): boolean => b >= 0xb8 && b <= 0xbf && b !== 0xbc;

/** The hookable system call sites in code[start, end) (ld.so's executable segment). */
export function findSyscallSites(code: Buffer, start: number, end: number): SyscallSite[] {
  const targets = branchTargets(code, start, end);
  const numbers = HOOKED_SYSCALLS.map(movEax);
  const sites: SyscallSite[] = [];
  const syscall = Buffer.from([0x0f, 0x05]);
  for (let p = code.indexOf(syscall, start + 5); p >= 0 && p + 2 <= end; p = code.indexOf(syscall, p + 1)) {
    const at = p - 5;
    if (!isMovImm32(code[at]!)) continue;
    const own = code.subarray(at, at + 5);
    const before = code.subarray(Math.max(start, at - NUMBER_BEFORE), at);
    const hooked = numbers.findIndex((n) => own.equals(n) || (code[at] !== 0xb8 && before.indexOf(n) >= 0));
    if (hooked < 0) continue;
    let inside = false;
    for (let k = 1; k < SITE_SIZE; k++) inside ||= targets.has(at + k);
    if (!inside) sites.push({ at, code: Buffer.from(code.subarray(at, at + SITE_SIZE)), nr: HOOKED_SYSCALLS[hooked]! });
  }
  return sites;
}

const rel32 = (from: bigint, to: bigint): number => {
  const d = to - from;
  if (d < -(1n << 31n) || d >= 1n << 31n) throw new Error('ld.so: a rewritten system call is too far from the shim');
  return Number(d);
};

/** The stub at `stub` for a site at `site` whose first instruction was `mov`: past the
 * red zone, the `mov`, a call of the common entry, back, and on after the site. */
export function stubBytes(stub: bigint, common: bigint, mov: Buffer, site: bigint): Buffer {
  const b = Buffer.alloc(STUB_SIZE, 0xcc);
  Buffer.from([0x48, 0x8d, 0x64, 0x24, 0x80]).copy(b, 0); // lea -0x80(%rsp),%rsp
  mov.copy(b, 5, 0, 5);
  b[10] = 0xe8; // call common
  b.writeInt32LE(rel32(stub + 15n, common), 11);
  Buffer.from([0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00]).copy(b, 15); // lea 0x80(%rsp),%rsp
  b[23] = 0xe9; // jmp site + 7
  b.writeInt32LE(rel32(stub + 28n, site + BigInt(SITE_SIZE)), 24);
  return b;
}

/** What replaces a site: `jmp stub` and two `nop`s (never run: the stub jumps past). */
export function siteJump(site: bigint, stub: bigint): Buffer {
  const b = Buffer.from([0xe9, 0, 0, 0, 0, 0x90, 0x90]);
  b.writeInt32LE(rel32(site + 5n, stub), 1);
  return b;
}

/** Offsets in the shim's info block (struct uwrx_shim_info). */
const INFO_SITES = 24;
const INFO_SITE_CODE = 32;
const INFO_SITE_DELTA = 96;

/**
 * Rewrites the sites of ld.so's executable segment (file bytes `out`, segment at file
 * offset `segOffset` and address `segVaddr`, `segSize` bytes) to the shim image `image`
 * placed at address `imageVaddr` (already copied into `out` at `imageOffset`: both are
 * written). Returns the sites rewritten.
 */
export function rewriteSyscalls(
  out: Buffer,
  seg: { offset: number; vaddr: bigint; size: number },
  image: { offset: number; vaddr: bigint; infoAt: number },
): SyscallSite[] {
  const stubsAt = out.indexOf(STUBS_MAGIC, image.offset);
  if (stubsAt < 0) throw new Error('uwrx-shim: stub area not found');
  const common = image.vaddr + BigInt(stubsAt - image.offset) + out.readBigInt64LE(stubsAt + 16);
  const firstStub = stubsAt + 24;
  const found = findSyscallSites(out, seg.offset, seg.offset + seg.size);
  const first = (s: SyscallSite): boolean => HOOKED_SYSCALLS.indexOf(s.nr as (typeof HOOKED_SYSCALLS)[number]) < FILE_CALLS;
  const sites = [...found.filter(first), ...found.filter((s) => !first(s))].slice(0, MAX_SITES);
  sites.forEach((s, i) => {
    const siteVaddr = seg.vaddr + BigInt(s.at - seg.offset);
    const stubAt = firstStub + i * STUB_SIZE;
    const stubVaddr = image.vaddr + BigInt(stubAt - image.offset);
    stubBytes(stubVaddr, common, s.code, siteVaddr).copy(out, stubAt);
    siteJump(siteVaddr, stubVaddr).copy(out, s.at);
    Buffer.concat([s.code, Buffer.alloc(1)]).copy(out, image.offset + image.infoAt + INFO_SITE_CODE + 8 * i);
    out.writeBigInt64LE(siteVaddr - image.vaddr, image.offset + image.infoAt + INFO_SITE_DELTA + 8 * i);
  });
  out.writeUInt32LE(sites.length, image.offset + image.infoAt + INFO_SITES);
  return sites;
}

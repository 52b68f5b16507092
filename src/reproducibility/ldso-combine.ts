// Builds the combined dynamic linker the sandbox binds over the PT_INTERP path(s): a
// copy of the real ld.so with the ld.so shim appended as one extra read+execute
// segment and e_entry pointing at the shim (see "combined form" in
// src/native/include/uwrx_control.h). The kernel maps both in one go; the shim edits
// the auxiliary vector and jumps to ld.so's original entry. Readers of the file (the
// static linker, debuggers) still find ld.so's dynamic symbols, which a bare shim
// bind-mounted there would hide (`ld: cannot use executable file ... as input to a link`).
import { sha256 } from '../crypto.js';
import { chmodSync, copyFileSync, promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { keepInCache, pruneCache, userCacheDir } from '../user-cache.js';
import { rewriteSyscalls, SYS_ACCESS } from './ldso-rewrite.js';
import { redirectPreloadList } from './recorder.js';

export const DEFAULT_SHIM_PATH = fileURLToPath(new URL('../../../src/native/out/uwrx-shim', import.meta.url));

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PF_X = 1;
const PF_R = 4;
const EM_X86_64 = 62;
const ET_DYN = 3;
const PHDR_SIZE = 56;
const PAGE = 0x1000n;
const SHIM_INFO_MAGIC = Buffer.from('uwrx-shim-info1\0', 'latin1');
// Sizes of relocation tables: nonzero would mean the shim needs relocating, and it has
// no relocator (DT_PLTRELSZ, DT_RELASZ, DT_RELSZ, DT_RELRSZ).
const RELOCATION_SIZE_TAGS = new Set([2n, 8n, 18n, 35n]);

interface Phdr {
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

interface Elf {
  entry: bigint;
  phoff: number;
  phdrs: Phdr[];
}

function parseElf(buf: Buffer, what: string): Elf {
  const magicOk = buf.length >= 64 && buf.readUInt32BE(0) === 0x7f454c46 && buf[4] === 2 && buf[5] === 1;
  if (!magicOk) throw new Error(`${what}: not a 64-bit little-endian ELF file`);
  if (buf.readUInt16LE(18) !== EM_X86_64) throw new Error(`${what}: not an x86_64 ELF file`);
  if (buf.readUInt16LE(16) !== ET_DYN) throw new Error(`${what}: not position independent (ET_DYN)`);
  if (buf.readUInt16LE(54) !== PHDR_SIZE) throw new Error(`${what}: unexpected program header size`);
  const phoff = Number(buf.readBigUInt64LE(32));
  const phnum = buf.readUInt16LE(56);
  const phdrs: Phdr[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * PHDR_SIZE;
    phdrs.push({
      type: buf.readUInt32LE(at),
      flags: buf.readUInt32LE(at + 4),
      offset: buf.readBigUInt64LE(at + 8),
      vaddr: buf.readBigUInt64LE(at + 16),
      filesz: buf.readBigUInt64LE(at + 32),
      memsz: buf.readBigUInt64LE(at + 40),
      align: buf.readBigUInt64LE(at + 48),
    });
  }
  return { entry: buf.readBigUInt64LE(24), phoff, phdrs };
}

function writePhdr(buf: Buffer, at: number, p: Phdr): void {
  buf.writeUInt32LE(p.type, at);
  buf.writeUInt32LE(p.flags, at + 4);
  buf.writeBigUInt64LE(p.offset, at + 8);
  buf.writeBigUInt64LE(p.vaddr, at + 16);
  buf.writeBigUInt64LE(p.vaddr, at + 24); // paddr
  buf.writeBigUInt64LE(p.filesz, at + 32);
  buf.writeBigUInt64LE(p.memsz, at + 40);
  buf.writeBigUInt64LE(p.align, at + 48);
}

const alignUp = (n: bigint, a: bigint) => (n + a - 1n) & ~(a - 1n);

/** The shim's memory image from address 0, as one flat block (it is position independent
 * and has no relocations, so the block runs wherever it is mapped). */
function shimImage(shim: Buffer): { image: Buffer; entry: bigint } {
  const elf = parseElf(shim, 'uwrx-shim');
  const loads = elf.phdrs.filter((p) => p.type === PT_LOAD);
  if (loads.length === 0 || loads[0]!.vaddr !== 0n) throw new Error('uwrx-shim: first segment is not at address 0');
  const dyn = elf.phdrs.find((p) => p.type === PT_DYNAMIC);
  if (dyn) {
    for (let at = Number(dyn.offset); at + 16 <= Number(dyn.offset + dyn.filesz); at += 16) {
      const tag = shim.readBigInt64LE(at);
      if (tag === 0n) break;
      if (RELOCATION_SIZE_TAGS.has(tag) && shim.readBigUInt64LE(at + 8) !== 0n) {
        throw new Error('uwrx-shim: has relocations; it cannot run as a flat image');
      }
    }
  }
  const size = loads.reduce((m, p) => (p.vaddr + p.memsz > m ? p.vaddr + p.memsz : m), 0n);
  const image = Buffer.alloc(Number(size));
  for (const p of loads) shim.copy(image, Number(p.vaddr), Number(p.offset), Number(p.offset + p.filesz));
  return { image, entry: elf.entry };
}

/** Combined ld.so bytes: the real ld.so with the shim as an extra segment; with
 * `hookSyscalls`, ld.so's own opens, stats and access checks go to the shim's hook
 * (ldso-rewrite.ts), and `hooked` lists the system calls it answers. */
export function combineLdso(ldso: Buffer, shim: Buffer, hookSyscalls?: false): Buffer;
export function combineLdso(ldso: Buffer, shim: Buffer, hookSyscalls: true): Buffer & { hooked: number[] };
export function combineLdso(ldso: Buffer, shim: Buffer, hookSyscalls = false): Buffer & { hooked?: number[] } {
  const elf = parseElf(ldso, 'ld.so');
  if (ldso.indexOf(SHIM_INFO_MAGIC) >= 0) throw new Error('ld.so: already combined with the uwrx shim');
  const { image, entry: shimEntry } = shimImage(shim);
  const infoAt = image.indexOf(SHIM_INFO_MAGIC);
  if (infoAt < 0 || image.indexOf(SHIM_INFO_MAGIC, infoAt + 1) >= 0) throw new Error('uwrx-shim: info block not found exactly once');

  const loads = elf.phdrs.filter((p) => p.type === PT_LOAD);
  const align = loads.reduce((m, p) => (p.align > m ? p.align : m), PAGE);
  const end = loads.reduce((m, p) => (p.vaddr + p.memsz > m ? p.vaddr + p.memsz : m), 0n);
  // ld.so finds its own program headers at its load address plus e_phoff, so the new
  // segment sits at the same offset in the file as in memory
  const at = [alignUp(end, align), alignUp(BigInt(ldso.length), align)].reduce((a, b) => (a > b ? a : b));
  const vaddr = at;
  const offset = at;

  // The way back to ld.so, relative to where the image lands.
  image.writeBigInt64LE(elf.entry - vaddr, infoAt + 16);

  // Every header ld.so had, and the shim's segment: the table grows by one entry, so it
  // moves behind the shim's image, inside the new segment. PT_NOTE stays: debuggers and
  // valgrind find ld.so's separate symbols by the build id it names.
  const phoff = offset + alignUp(BigInt(image.length), 8n);
  const phdrs = [...elf.phdrs];
  const tableSize = BigInt((phdrs.length + 1) * PHDR_SIZE);
  const size = phoff + tableSize - offset;
  const segment: Phdr = { type: PT_LOAD, flags: PF_R | PF_X, offset, vaddr, filesz: size, memsz: size, align };
  // The kernel sizes the mapping from the first to the last PT_LOAD in table order, so
  // the new one goes right after the last existing PT_LOAD.
  const lastLoad = phdrs.reduce((last, p, i) => (p.type === PT_LOAD ? i : last), -1);
  phdrs.splice(lastLoad + 1, 0, segment);

  const out = Buffer.alloc(Number(phoff + tableSize));
  ldso.copy(out);
  image.copy(out, Number(offset));
  phdrs.forEach((p, i) => writePhdr(out, Number(phoff) + i * PHDR_SIZE, p));
  out.writeBigUInt64LE(phoff, 32); // e_phoff
  out.writeUInt16LE(phdrs.length, 56); // e_phnum
  out.writeBigUInt64LE(vaddr + shimEntry, 24); // e_entry
  const text = elf.phdrs.find((p) => p.type === PT_LOAD && (p.flags & PF_X) !== 0);
  if (!hookSyscalls) return out;
  const sites = text ? rewriteSyscalls(out, { offset: Number(text.offset), vaddr: text.vaddr, size: Number(text.filesz) }, { offset: Number(offset), vaddr, infoAt }) : [];
  return Object.assign(out, { hooked: [...new Set(sites.map((s) => s.nr))] });
}

/** Writes the combined ld.so for `realLdsoPath` to `outPath` (mode 0755). The bytes
 * come from the per-user cache (ldsoCacheDir) when it holds them for the same ld.so,
 * shim and preload list; otherwise they are made and kept there for the next run. */
export async function writeCombinedLdso(realLdsoPath: string, outPath: string, shimPath = DEFAULT_SHIM_PATH, preloadList?: string): Promise<void> {
  // Every run takes the cached bytes: two stats, a copy in the kernel and a chmod, made
  // with synchronous calls (each through the thread pool cost more than the call).
  const key = combinedKey(realLdsoPath, shimPath, preloadList);
  const cached = path.join(ldsoCacheDir(), `ld.so-${key}`);
  let hit = true;
  try {
    // a copy, never the cached file itself: the sandbox must not be able to change it
    copyFileSync(cached, outPath);
  } catch {
    hit = false;
  }
  if (!hit) {
    const [ldso, shim] = await Promise.all([fs.readFile(realLdsoPath), fs.readFile(shimPath)]);
    // with the recorder (a preload list), ld.so's own calls are recorded in process too
    const combined = preloadList === undefined ? combineLdso(ldso, shim) : combineWithPreloadList(ldso, shim, preloadList);
    await fs.writeFile(outPath, combined);
    if (keepInCache(cached, combined)) pruneCache('ld.so-', KEPT_LDSO_FILES);
  }
  chmodSync(outPath, 0o755);
}

/** The combined ld.so of a run with the recorder: ld.so's own calls go to the shim's hook
 * and it reads uwrx's preload list where it reads /etc/ld.so.preload. The hook answers its
 * access check and its open of that path with uwrx's list and the file's, so that its
 * messages name the file as natively; where ld.so's access check could not be hooked,
 * the list's own path is written over ld.so's (in ld.so's own bytes, at the start as they
 * were: the shim names the path too). */
function combineWithPreloadList(ldso: Buffer, shim: Buffer, preloadList: string): Buffer {
  const combined = combineLdso(ldso, shim, true);
  if (!combined.hooked.includes(SYS_ACCESS)) redirectPreloadList(combined.subarray(0, ldso.length), preloadList);
  return combined;
}

/** Combined files kept in the cache: each rebuilt shim or updated ld.so makes a new one. */
const KEPT_LDSO_FILES = 16;

/** Where combined ld.so files are kept between runs. */
export const ldsoCacheDir = userCacheDir;

/** Names what the combined bytes are made of: both files by identity (device, inode,
 * size, change time: a package update or a rebuilt shim gives a new key) and the
 * preload list. */
function combinedKey(realLdsoPath: string, shimPath: string, preloadList: string | undefined): string {
  const ids = [realLdsoPath, shimPath].map((p) => {
    const st = statSync(p, { bigint: true });
    return [p, st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(':');
  });
  return sha256([...ids, preloadList ?? ''].join('\n')).toString('hex').slice(0, 32);
}


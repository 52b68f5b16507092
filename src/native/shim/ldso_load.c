/* Maps the real dynamic linker the way the kernel maps a PT_INTERP object:
 * one reservation at a kernel-chosen address, then each PT_LOAD at its offset. */
#include <elf.h>

#include "sys.h"
#include "uwrx_control.h"

#define MAX_PHDRS 32

static int has_shim_note(long fd, const Elf64_Phdr *ph) {
  unsigned char buf[256];
  if (ph->p_filesz > sizeof buf) return 0;
  if (shim_syscall6(SYS_pread64, fd, (long)buf, (long)ph->p_filesz, (long)ph->p_offset, 0, 0) !=
      (long)ph->p_filesz)
    return 0;
  size_t at = 0;
  while (at + sizeof(Elf64_Nhdr) <= ph->p_filesz) {
    const Elf64_Nhdr *n = (const Elf64_Nhdr *)(buf + at);
    size_t name_at = at + sizeof(Elf64_Nhdr);
    size_t desc_at = name_at + ((n->n_namesz + 3) & ~3u);
    size_t next = desc_at + ((n->n_descsz + 3) & ~3u);
    if (next > ph->p_filesz) break;
    const char *want = UWRX_SHIM_NOTE_NAME;
    if (n->n_type == UWRX_SHIM_NOTE_TYPE && n->n_namesz == shim_strlen(want) + 1) {
      const char *name = (const char *)buf + name_at;
      size_t i = 0;
      while (i < n->n_namesz && name[i] == want[i]) i++;
      if (i == n->n_namesz) return 1;
    }
    at = next;
  }
  return 0;
}

static void zero(uintptr_t from, uintptr_t to) {
  volatile unsigned char *p = (volatile unsigned char *)from;
  while ((uintptr_t)p < to) *p++ = 0;
}

static int prot_of(uint32_t flags) {
  return ((flags & PF_R) ? PROT_READ_ : 0) | ((flags & PF_W) ? PROT_WRITE_ : 0) |
         ((flags & PF_X) ? PROT_EXEC_ : 0);
}

static int is_error(long r) { return (unsigned long)r > -4096UL; }

int shim_load_ldso(const char *path, unsigned long pg, struct shim_loaded *out) {
  long fd = shim_syscall6(SYS_openat, AT_FDCWD_, (long)path, O_RDONLY_ | O_CLOEXEC_, 0, 0, 0);
  if (fd < 0) return -1;

  Elf64_Ehdr eh;
  Elf64_Phdr ph[MAX_PHDRS];
  int ok = shim_syscall6(SYS_pread64, fd, (long)&eh, sizeof eh, 0, 0, 0) == (long)sizeof eh &&
           eh.e_ident[EI_MAG0] == ELFMAG0 && eh.e_ident[EI_MAG1] == ELFMAG1 &&
           eh.e_ident[EI_MAG2] == ELFMAG2 && eh.e_ident[EI_MAG3] == ELFMAG3 &&
           eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_machine == EM_X86_64 &&
           eh.e_type == ET_DYN && eh.e_phentsize == sizeof(Elf64_Phdr) && eh.e_phnum > 0 &&
           eh.e_phnum <= MAX_PHDRS;
  size_t phsize = (size_t)eh.e_phnum * sizeof(Elf64_Phdr);
  ok = ok && shim_syscall6(SYS_pread64, fd, (long)ph, (long)phsize, (long)eh.e_phoff, 0, 0) ==
                 (long)phsize;

  uintptr_t lo = UINTPTR_MAX, hi = 0, align = pg;
  for (unsigned i = 0; ok && i < eh.e_phnum; i++) {
    if (ph[i].p_type == PT_NOTE && has_shim_note(fd, &ph[i])) ok = 0;
    if (ph[i].p_type != PT_LOAD) continue;
    if ((ph[i].p_vaddr & (pg - 1)) != (ph[i].p_offset & (pg - 1))) ok = 0;
    if (ph[i].p_vaddr < lo) lo = ph[i].p_vaddr;
    if (ph[i].p_vaddr + ph[i].p_memsz > hi) hi = ph[i].p_vaddr + ph[i].p_memsz;
    if (ph[i].p_align > align) align = ph[i].p_align;
  }
  if (!ok || lo >= hi || (align & (align - 1))) {
    shim_syscall3(SYS_close, fd, 0, 0);
    return -1;
  }
  lo &= ~(pg - 1);
  hi = (hi + pg - 1) & ~(pg - 1);

  /* Reserve the whole span (plus slack to honour p_align), then trim the slack. */
  size_t span = hi - lo;
  long r = shim_syscall6(SYS_mmap, 0, (long)(span + align - pg), PROT_NONE_,
                         MAP_PRIVATE_ | MAP_ANONYMOUS_, -1, 0);
  if (is_error(r)) shim_die("cannot reserve memory for ", path);
  uintptr_t start = ((uintptr_t)r + align - 1) & ~(align - 1);
  if (start > (uintptr_t)r) shim_syscall3(SYS_munmap, r, (long)(start - (uintptr_t)r), 0);
  uintptr_t end = (uintptr_t)r + span + align - pg;
  if (end > start + span) shim_syscall3(SYS_munmap, (long)(start + span), (long)(end - start - span), 0);
  uintptr_t base = start - lo;

  for (unsigned i = 0; i < eh.e_phnum; i++) {
    const Elf64_Phdr *p = &ph[i];
    if (p->p_type != PT_LOAD) continue;
    int prot = prot_of(p->p_flags);
    uintptr_t seg = base + (p->p_vaddr & ~(pg - 1));
    uintptr_t file_end = base + p->p_vaddr + p->p_filesz;
    uintptr_t mem_end = base + p->p_vaddr + p->p_memsz;
    if (p->p_filesz > 0) {
      r = shim_syscall6(SYS_mmap, (long)seg, (long)(file_end - seg), prot,
                        MAP_PRIVATE_ | MAP_FIXED_, fd, (long)(p->p_offset & ~(pg - 1)));
      if (is_error(r)) shim_die("cannot map ", path);
    }
    if (p->p_memsz > p->p_filesz) {
      /* .bss: clear the whole rest of the last file page (as the kernel does: ld.so's
       * early allocator uses the bytes after _end up to the page end as zeroed memory),
       * then map anonymous pages after it. */
      uintptr_t page_end = (file_end + pg - 1) & ~(pg - 1);
      if (p->p_filesz > 0 && page_end > file_end) {
        if (!(prot & PROT_WRITE_))
          shim_syscall3(SYS_mprotect, (long)(file_end & ~(pg - 1)), (long)pg, prot | PROT_WRITE_);
        zero(file_end, page_end);
        if (!(prot & PROT_WRITE_))
          shim_syscall3(SYS_mprotect, (long)(file_end & ~(pg - 1)), (long)pg, prot);
      }
      uintptr_t anon = p->p_filesz > 0 ? page_end : seg;
      uintptr_t anon_end = (mem_end + pg - 1) & ~(pg - 1);
      if (anon_end > anon) {
        r = shim_syscall6(SYS_mmap, (long)anon, (long)(anon_end - anon), prot,
                          MAP_PRIVATE_ | MAP_FIXED_ | MAP_ANONYMOUS_, -1, 0);
        if (is_error(r)) shim_die("cannot map .bss of ", path);
      }
    }
  }
  shim_syscall3(SYS_close, fd, 0, 0);

  out->base = base;
  out->entry = base + eh.e_entry;
  out->phnum = eh.e_phnum;
  out->phdr = 0;
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    const Elf64_Phdr *p = &ph[i];
    if (p->p_type == PT_LOAD && eh.e_phoff >= p->p_offset &&
        eh.e_phoff + phsize <= p->p_offset + p->p_filesz)
      out->phdr = base + p->p_vaddr + (eh.e_phoff - p->p_offset);
  }
  return 0;
}

/* Removing a directory tree with the *at calls (remove_tree.h). */
#include "remove_tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int uwrx_remove_at(int parent, const char *name, unsigned char type) {
  if (type != DT_DIR) {
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT) return 0;
    if (errno != EISDIR && errno != EPERM) return errno;
  }
  /* a directory (Linux says EISDIR; POSIX allows EPERM): empty ones go at once */
  if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT) return 0;
  if (errno == ENOTDIR && type == DT_DIR) return uwrx_remove_at(parent, name, DT_UNKNOWN); /* replaced meanwhile */
  if (errno != ENOTEMPTY && errno != EEXIST) return errno;
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES) {
    if (fchmodat(parent, name, 0700, 0) != 0) return errno == ENOENT ? 0 : errno;
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0) return errno == ENOENT ? 0 : errno;
  struct stat st;
  /* without write and search permission its entries cannot be removed */
  if (fstat(fd, &st) == 0 && (st.st_mode & 0300) != 0300) fchmod(fd, (st.st_mode & 07777) | 0700);
  DIR *dir = fdopendir(fd);
  if (!dir) {
    int err = errno;
    close(fd);
    return err;
  }
  int err = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(dir);
    if (!e) {
      if (errno != 0) err = errno;
      break;
    }
    if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
    err = uwrx_remove_at(dirfd(dir), e->d_name, e->d_type);
    if (err != 0) break;
  }
  closedir(dir);
  if (err != 0) return err;
  if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT) return 0;
  return errno;
}

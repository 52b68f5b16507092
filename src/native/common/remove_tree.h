/* Removing a directory tree with the *at calls: the addon's removeTree (one thread-pool
 * job, src/native/addon/remove.cc) and uwrx-remove (a run directory removed after uwrx
 * exited, src/native/remove/main.c). */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/* Removes `name` in the directory `parent` (a file, a symlink or a whole directory);
 * 0 or an errno. Absent is success, so that two removals of one tree may overlap. A
 * directory that denies its owner reading or writing (overlayfs leaves work/work with
 * mode 000) is given 0700 first. `type`: the entry's d_type where readdir told it
 * (DT_UNKNOWN otherwise), so a directory is not first tried as a file (a run directory
 * is mostly directories). */
int uwrx_remove_at(int parent, const char *name, unsigned char type);

#ifdef __cplusplus
}
#endif

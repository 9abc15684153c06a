/* outfile.c: see outfile.h. */
#define _GNU_SOURCE             /* mkostemp */
#include "outfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define MODE_DEFAULT 0640

static int remove_private(const char *path);

static void reset(outfile *o)
{
    o->final[0] = o->temp[0] = o->privdir[0] = '\0';
    o->fd = -1;
    o->f = NULL;
}

/* A name that stays in its folder and is not hidden: no '/', no control
 * character, not starting with '.' (so never "." or "..", and never one
 * of outfile's own temporaries). */
static int plain_name(const char *name)
{
    if (name == NULL || *name == '\0' || *name == '.')
        return 0;
    for (const char *p = name; *p; p++)
        if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

ac_status outfile_mode(mode_t *mode, char *err)
{
    const char *v = getenv("ACBILL_FILE_MODE");
    char *end;
    long m;

    *mode = MODE_DEFAULT;
    if (v == NULL || *v == '\0')
        return AC_OK;
    errno = 0;
    m = strtol(v, &end, 8);
    if (errno != 0 || *end != '\0' || m < 0 || (m & ~0666L) != 0 ||
        (m & 0600) != 0600)
        return ac_fail(err, AC_ECONFIG, "ACBILL_FILE_MODE=%s: expected an "
                       "octal mode with owner read-write and no execute "
                       "bits, such as 0640 or 0644", v);
    *mode = (mode_t)m;
    return AC_OK;
}

ac_status outfile_open(outfile *o, const char *dir, const char *name,
                       char *err)
{
    reset(o);
    if (!plain_name(name))
        return ac_fail(err, AC_EINTERNAL, "outfile: '%s' is not a plain "
                       "file name", name ? name : "(null)");
    if ((size_t)snprintf(o->final, sizeof o->final, "%s/%s", dir, name) >=
            sizeof o->final ||
        (size_t)snprintf(o->temp, sizeof o->temp, "%s/.%s.tmp-XXXXXX", dir,
                         name) >= sizeof o->temp)
        return ac_fail(err, AC_ECANTCREAT, "path too long: %.100s/%s", dir,
                       name);
    /* mkostemp opens with O_CREAT|O_EXCL: an existing name, a symlink
     * included, is never opened; it tries another random name. */
    o->fd = mkostemp(o->temp, O_CLOEXEC | O_NOFOLLOW);
    if (o->fd < 0) {
        ac_status rc = ac_fail(err, AC_ECANTCREAT, "cannot create a "
                               "temporary for %s: %s", o->final,
                               strerror(errno));
        o->temp[0] = '\0';
        return rc;
    }
    return AC_OK;
}

FILE *outfile_stream(outfile *o)
{
    if (o->f == NULL && o->fd >= 0)
        o->f = fdopen(o->fd, "w+");
    return o->f;
}

ac_status outfile_open_path(outfile *o, const char *dir, const char *name,
                            char *err)
{
    reset(o);
    if (!plain_name(name))
        return ac_fail(err, AC_EINTERNAL, "outfile: '%s' is not a plain "
                       "file name", name ? name : "(null)");
    if ((size_t)snprintf(o->final, sizeof o->final, "%s/%s", dir, name) >=
            sizeof o->final ||
        (size_t)snprintf(o->privdir, sizeof o->privdir, "%s/"
                         OUTFILE_PRIVATE_PREFIX "XXXXXX", dir) >=
            sizeof o->privdir)
        return ac_fail(err, AC_ECANTCREAT, "path too long: %.100s/%s", dir,
                       name);
    if (mkdtemp(o->privdir) == NULL) {
        ac_status rc = ac_fail(err, AC_ECANTCREAT, "cannot create a private "
                               "directory for %s: %s", o->final,
                               strerror(errno));
        o->privdir[0] = '\0';
        return rc;
    }
    if ((size_t)snprintf(o->temp, sizeof o->temp, "%s/%s", o->privdir,
                         name) >= sizeof o->temp) {
        outfile_discard(o);
        return ac_fail(err, AC_ECANTCREAT, "path too long: %.100s/%s", dir,
                       name);
    }
    return AC_OK;
}

void outfile_discard(outfile *o)
{
    if (o->f != NULL)
        fclose(o->f);
    else if (o->fd >= 0)
        close(o->fd);
    o->f = NULL;
    o->fd = -1;
    if (o->temp[0] != '\0')
        unlink(o->temp);
    if (o->privdir[0] != '\0')
        remove_private(o->privdir);   /* and what a library left in it */
    o->temp[0] = o->privdir[0] = '\0';
}

static void sync_dir(const char *path)
{
    char dir[PATH_MAX];
    char *slash;

    snprintf(dir, sizeof dir, "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

ac_status outfile_commit(outfile *o, char *err)
{
    mode_t mode;
    ac_status rc = outfile_mode(&mode, err);
    const char *why = NULL;

    if (rc != AC_OK) {
        outfile_discard(o);
        return rc;
    }
    if (o->f != NULL && fflush(o->f) != 0)
        why = strerror(errno);
    if (why == NULL && o->fd < 0) {
        /* Written by path in the private directory: open it without
         * following a link to set its mode and flush it. */
        o->fd = open(o->temp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (o->fd < 0)
            why = strerror(errno);
    }
    if (why == NULL && fchmod(o->fd, mode) != 0)
        why = strerror(errno);
    if (why == NULL && fsync(o->fd) != 0)
        why = strerror(errno);
    int closed = o->f != NULL ? fclose(o->f) : close(o->fd);
    o->f = NULL;
    o->fd = -1;
    if (closed != 0 && why == NULL)
        why = strerror(errno);
    if (why == NULL && rename(o->temp, o->final) != 0)
        why = strerror(errno);
    if (why != NULL) {
        rc = ac_fail(err, AC_ECANTCREAT, "cannot write %s: %s", o->final,
                     why);
        outfile_discard(o);
        return rc;
    }
    o->temp[0] = '\0';
    if (o->privdir[0] != '\0' && rmdir(o->privdir) != 0)
        outfile_discard(o);
    o->privdir[0] = '\0';
    sync_dir(o->final);
    return AC_OK;
}

ac_status outfile_mkdir(const char *parent, const char *name, char *path,
                        char *err)
{
    struct stat st;

    if ((size_t)snprintf(path, PATH_MAX, "%s/%s", parent, name) >= PATH_MAX)
        return ac_fail(err, AC_ECANTCREAT, "path too long: %.100s/%s",
                       parent, name);
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return ac_fail(err, AC_ECANTCREAT, "cannot create %s: %s", path,
                       strerror(errno));
    if (lstat(path, &st) != 0)
        return ac_fail(err, AC_ECANTCREAT, "cannot create %s: %s", path,
                       strerror(errno));
    if (S_ISLNK(st.st_mode))
        return ac_fail(err, AC_ECANTCREAT, "%s is a symbolic link: refused "
                       "(someone who can write the output folder may have "
                       "planted it; remove it)", path);
    if (!S_ISDIR(st.st_mode))
        return ac_fail(err, AC_ECANTCREAT, "%s is not a directory", path);
    return AC_OK;
}

/* Remove a private directory's content (plain entries only) and it. */
static int remove_private(const char *path)
{
    DIR *d;
    struct dirent *e;
    char entry[PATH_MAX];
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return unlink(path);     /* a file or symlink of that name */
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(fd, e->d_name, 0) != 0 && errno == EISDIR) {
            snprintf(entry, sizeof entry, "%s/%s", path, e->d_name);
            remove_private(entry);
        }
    }
    closedir(d);
    return rmdir(path);
}

int outfile_sweep(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX];
    int removed = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        int priv = strncmp(e->d_name, OUTFILE_PRIVATE_PREFIX,
                           strlen(OUTFILE_PRIVATE_PREFIX)) == 0;
        int temp = e->d_name[0] == '.' && strstr(e->d_name, ".tmp") != NULL;
        if (!priv && !temp)
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >=
            sizeof path)
            continue;
        if ((priv ? remove_private(path) : unlink(path)) == 0) {
            ac_info("removed %s, left by an earlier run", path);
            removed++;
        }
    }
    closedir(d);
    return removed;
}

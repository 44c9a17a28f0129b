/*
 * memfs: an in-memory file system on libfuse 2 in C, mounted with the same
 * options as p2k: FUSE's own ceiling on this machine, beside barefs (the
 * same thing in JavaScript on fuse-native) in scripts/bench.
 *   gcc -O2 -o memfs memfs.c $(pkg-config --cflags --libs fuse)
 *   memfs -f -o use_ino,big_writes,... mountpoint
 * One lock around everything: the point is the transport, not scaling.
 */
#define FUSE_USE_VERSION 26
#include <errno.h>
#include <fuse.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct node {
	struct node *parent, *next_child, *prev_child, *children; /* directory tree */
	struct node *hash_next;                                  /* (parent, name) table */
	char *name;
	mode_t mode;
	uint64_t ino;
	nlink_t nlink;
	int opens;
	char *data;
	size_t size, cap;
	struct timespec atime, mtime, ctime;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct node root;
static uint64_t next_ino = 2;
static struct node **table;
static size_t table_size = 1 << 16, table_used;

static size_t hash(const struct node *parent, const char *name, size_t len)
{
	size_t h = (uintptr_t)parent * 31;
	for (size_t i = 0; i < len; i++)
		h = h * 131 + (unsigned char)name[i];
	return h & (table_size - 1);
}

static struct node *child(struct node *dir, const char *name, size_t len)
{
	for (struct node *n = table[hash(dir, name, len)]; n; n = n->hash_next)
		if (n->parent == dir && strlen(n->name) == len && memcmp(n->name, name, len) == 0)
			return n;
	return NULL;
}

static void link_child(struct node *dir, struct node *n)
{
	if (++table_used > table_size / 2) {
		struct node **old = table;
		size_t old_size = table_size;
		table_size *= 2;
		table = calloc(table_size, sizeof *table);
		for (size_t i = 0; i < old_size; i++)
			for (struct node *m = old[i], *next; m; m = next) {
				size_t h = hash(m->parent, m->name, strlen(m->name));
				next = m->hash_next;
				m->hash_next = table[h];
				table[h] = m;
			}
		free(old);
	}
	n->parent = dir;
	size_t h = hash(dir, n->name, strlen(n->name));
	n->hash_next = table[h];
	table[h] = n;
	n->prev_child = NULL;
	n->next_child = dir->children;
	if (dir->children)
		dir->children->prev_child = n;
	dir->children = n;
}

static void unlink_child(struct node *n)
{
	struct node **p = &table[hash(n->parent, n->name, strlen(n->name))];
	while (*p != n)
		p = &(*p)->hash_next;
	*p = n->hash_next;
	table_used--;
	if (n->prev_child)
		n->prev_child->next_child = n->next_child;
	else
		n->parent->children = n->next_child;
	if (n->next_child)
		n->next_child->prev_child = n->prev_child;
}

/* Last component in *last (not looked up) when last is given. */
static struct node *walk(const char *path, const char **last)
{
	struct node *n = &root;
	for (;;) {
		while (*path == '/')
			path++;
		if (!*path)
			return n;
		size_t len = strcspn(path, "/");
		if (last && !path[len + strspn(path + len, "/")]) {
			*last = path;
			return n;
		}
		if (!S_ISDIR(n->mode) || !(n = child(n, path, len)))
			return NULL;
		path += len;
	}
}

static struct node *lookup(const char *path)
{
	return walk(path, NULL);
}

static void release_node(struct node *n)
{
	if (n->nlink == 0 && n->opens == 0) {
		free(n->data);
		free(n->name);
		free(n);
	}
}

static void fill(const struct node *n, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = n->ino;
	st->st_mode = n->mode;
	st->st_nlink = n->nlink;
	st->st_size = n->size;
	st->st_blksize = 4096;
	st->st_blocks = (n->size + 511) / 512;
	st->st_atim = n->atime;
	st->st_mtim = n->mtime;
	st->st_ctim = n->ctime;
}

static int make(const char *path, mode_t mode, struct node **out)
{
	const char *name;
	struct node *dir = walk(path, &name);
	if (!dir || !S_ISDIR(dir->mode))
		return -ENOENT;
	if (child(dir, name, strlen(name)))
		return -EEXIST;
	struct node *n = calloc(1, sizeof *n);
	n->name = strdup(name);
	n->mode = mode;
	n->ino = next_ino++;
	n->nlink = S_ISDIR(mode) ? 2 : 1;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	n->atime = n->ctime = n->mtime;
	link_child(dir, n);
	if (S_ISDIR(mode))
		dir->nlink++;
	*out = n;
	return 0;
}

static int resize(struct node *n, size_t size)
{
	if (size > n->cap) {
		size_t cap = n->cap ? n->cap : 4096;
		while (cap < size)
			cap *= 2;
		char *d = realloc(n->data, cap);
		if (!d)
			return -ENOSPC;
		n->data = d;
		n->cap = cap;
	}
	if (size > n->size)
		memset(n->data + n->size, 0, size - n->size);
	n->size = size;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	n->ctime = n->mtime;
	return 0;
}

/* Each operation runs under the lock: BEGIN declares r and takes it. */
#define BEGIN int r = 0; pthread_mutex_lock(&lock)
#define END pthread_mutex_unlock(&lock); return r

static int m_getattr(const char *path, struct stat *st)
{
	BEGIN;
	struct node *n = lookup(path);
	if (n) fill(n, st); else r = -ENOENT;
	END;
}

static int m_fgetattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	BEGIN;
	fill((struct node *)(uintptr_t)fi->fh, st);
	END;
}

static int m_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi)
{
	BEGIN;
	struct node *d = lookup(path);
	if (!d || !S_ISDIR(d->mode)) {
		r = -ENOTDIR;
	} else {
		struct stat st;
		fill(d, &st);
		filler(buf, ".", &st, 0);
		fill(d->parent ? d->parent : d, &st);
		filler(buf, "..", &st, 0);
		for (struct node *n = d->children; n; n = n->next_child) {
			fill(n, &st);
			filler(buf, n->name, &st, 0);
		}
	}
	END;
}

static int m_mkdir(const char *path, mode_t mode)
{
	BEGIN;
	struct node *n;
	r = make(path, S_IFDIR | (mode & 07777), &n);
	END;
}

static int m_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	BEGIN;
	struct node *n;
	r = make(path, S_IFREG | (mode & 07777), &n);
	if (r == 0) {
		n->opens++;
		fi->fh = (uintptr_t)n;
	}
	END;
}

static int m_open(const char *path, struct fuse_file_info *fi)
{
	BEGIN;
	struct node *n = lookup(path);
	if (!n) {
		r = -ENOENT;
	} else {
		n->opens++;
		fi->fh = (uintptr_t)n;
	}
	END;
}

static int m_release(const char *path, struct fuse_file_info *fi)
{
	BEGIN;
	struct node *n = (struct node *)(uintptr_t)fi->fh;
	n->opens--;
	release_node(n);
	END;
}

static int m_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	BEGIN;
	struct node *n = (struct node *)(uintptr_t)fi->fh;
	if ((size_t)off < n->size) {
		r = n->size - off < len ? n->size - off : len;
		memcpy(buf, n->data + off, r);
	}
	END;
}

static int m_write(const char *path, const char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	BEGIN;
	struct node *n = (struct node *)(uintptr_t)fi->fh;
	if (off + len > n->size) r = resize(n, off + len);
	if (r == 0) {
		memcpy(n->data + off, buf, len);
		r = len;
	}
	END;
}

static int m_truncate(const char *path, off_t size)
{
	BEGIN;
	struct node *n = lookup(path);
	r = n ? resize(n, size) : -ENOENT;
	END;
}

static int m_ftruncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	BEGIN;
	r = resize((struct node *)(uintptr_t)fi->fh, size);
	END;
}

static int m_unlink(const char *path)
{
	BEGIN;
	struct node *n = lookup(path);
	if (!n) {
		r = -ENOENT;
	} else if (S_ISDIR(n->mode)) {
		r = -EISDIR;
	} else {
		unlink_child(n);
		n->nlink = 0;
		release_node(n);
	}
	END;
}

static int m_rmdir(const char *path)
{
	BEGIN;
	struct node *n = lookup(path);
	if (!n) {
		r = -ENOENT;
	} else if (!S_ISDIR(n->mode)) {
		r = -ENOTDIR;
	} else if (n->children) {
		r = -ENOTEMPTY;
	} else if (n == &root) {
		r = -EBUSY;
	} else {
		n->parent->nlink--;
		unlink_child(n);
		n->nlink = 0;
		release_node(n);
	}
	END;
}

static int m_rename(const char *from, const char *to)
{
	BEGIN;
	const char *name;
	struct node *n = lookup(from), *dir = walk(to, &name), *old;
	if (!n || !dir || !S_ISDIR(dir->mode)) {
		r = -ENOENT;
	} else {
		for (struct node *a = dir; a && r == 0; a = a->parent)
			if (a == n) r = -EINVAL;
		if (r == 0 && (old = child(dir, name, strlen(name))) && old != n) {
			if (S_ISDIR(old->mode) && old->children) {
				r = -ENOTEMPTY;
			} else {
				if (S_ISDIR(old->mode)) dir->nlink--;
				unlink_child(old);
				old->nlink = 0;
				release_node(old);
			}
		}
		if (r == 0) {
			unlink_child(n);
			if (S_ISDIR(n->mode)) { n->parent->nlink--; dir->nlink++; }
			free(n->name);
			n->name = strdup(name);
			link_child(dir, n);
		}
	}
	END;
}

static int m_utimens(const char *path, const struct timespec tv[2])
{
	BEGIN;
	struct node *n = lookup(path);
	if (n) { n->atime = tv[0]; n->mtime = tv[1]; } else r = -ENOENT;
	END;
}

static int m_chmod(const char *path, mode_t mode)
{
	BEGIN;
	struct node *n = lookup(path);
	if (n) n->mode = (n->mode & S_IFMT) | (mode & 07777); else r = -ENOENT;
	END;
}

static int m_statfs(const char *path, struct statvfs *s)
{
	memset(s, 0, sizeof *s);
	s->f_bsize = s->f_frsize = 4096;
	s->f_blocks = s->f_bfree = s->f_bavail = 1 << 22;
	s->f_files = s->f_ffree = s->f_favail = 1 << 22;
	s->f_namemax = 255;
	return 0;
}

/* Nothing to flush or to own. */
static int m_flush(const char *path, struct fuse_file_info *fi) { return 0; }
static int m_fsync(const char *path, int datasync, struct fuse_file_info *fi) { return 0; }
static int m_chown(const char *path, uid_t uid, gid_t gid) { return 0; }

int main(int argc, char *argv[])
{
	static struct fuse_operations ops = {
		.getattr = m_getattr, .fgetattr = m_fgetattr, .readdir = m_readdir,
		.mkdir = m_mkdir, .create = m_create, .open = m_open, .release = m_release,
		.read = m_read, .write = m_write, .truncate = m_truncate, .ftruncate = m_ftruncate,
		.unlink = m_unlink, .rmdir = m_rmdir, .rename = m_rename, .utimens = m_utimens,
		.chmod = m_chmod, .statfs = m_statfs,
		.flush = m_flush, .fsync = m_fsync, .chown = m_chown,
	};
	root.mode = S_IFDIR | 0755;
	root.ino = 1;
	root.nlink = 2;
	clock_gettime(CLOCK_REALTIME, &root.mtime);
	root.atime = root.ctime = root.mtime;
	table = calloc(table_size, sizeof *table);
	return fuse_main(argc, argv, &ops, NULL);
}

/* What the preload can see of a program file (see sealed.h).
 *
 * The file may be anything a user passes, including a truncated or hostile
 * ELF: every read is a pread() of a bounded size at an offset checked
 * against the file's size, and anything that does not parse is "dynamic"
 * (the preload's ordinary case: run it as before). */
#include "sealed.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_PHNUM 512          /* real programs have a dozen */
#define MAX_SHNUM 4096         /* and some dozens of sections */
#define MAX_NOTE (64 * 1024)   /* bytes of one PT_NOTE segment read */
#define MAX_SHSTR (256 * 1024) /* bytes of the section name table read */
#define GO_NOTE_BUILDID 4      /* the Go linker's build ID note type */

/* The fields this module needs, whichever the ELF class. */
struct elf_view {
	int is64;
	uint64_t phoff, shoff;
	unsigned phnum, phentsize, shnum, shentsize, shstrndx;
	off_t size;
};

struct seg {
	uint32_t type;
	uint64_t offset, filesz;
};

/* Read exactly n bytes at off, inside the file: 0, or -1. */
static int read_at(int fd, const struct elf_view *v, void *buf, size_t n, uint64_t off)
{
	if (off > (uint64_t)v->size || n > (uint64_t)v->size - off)
		return -1;
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

/* The ELF header: 0 when it is one this machine could run the layout of
 * (either class, native byte order), else -1. */
static int read_header(int fd, struct elf_view *v)
{
	unsigned char id[EI_NIDENT];
	if (read_at(fd, v, id, sizeof id, 0) < 0 || memcmp(id, ELFMAG, SELFMAG) != 0)
		return -1;
	const union { uint16_t u; unsigned char c[2]; } probe = {.u = 1};
	if (id[EI_DATA] != (probe.c[0] ? ELFDATA2LSB : ELFDATA2MSB))
		return -1;
	if (id[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr h;
		if (read_at(fd, v, &h, sizeof h, 0) < 0)
			return -1;
		*v = (struct elf_view){.is64 = 1, .phoff = h.e_phoff, .shoff = h.e_shoff, .phnum = h.e_phnum,
				       .phentsize = h.e_phentsize, .shnum = h.e_shnum, .shentsize = h.e_shentsize,
				       .shstrndx = h.e_shstrndx, .size = v->size};
	} else if (id[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr h;
		if (read_at(fd, v, &h, sizeof h, 0) < 0)
			return -1;
		*v = (struct elf_view){.is64 = 0, .phoff = h.e_phoff, .shoff = h.e_shoff, .phnum = h.e_phnum,
				       .phentsize = h.e_phentsize, .shnum = h.e_shnum, .shentsize = h.e_shentsize,
				       .shstrndx = h.e_shstrndx, .size = v->size};
	} else {
		return -1;
	}
	size_t want = v->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	/* PN_XNUM (more headers than e_phnum holds) is for core files. */
	if (v->phnum == 0 || v->phnum > MAX_PHNUM || v->phentsize != want)
		return -1;
	return 0;
}

static int read_seg(int fd, const struct elf_view *v, unsigned i, struct seg *s)
{
	uint64_t off = v->phoff + (uint64_t)i * v->phentsize;
	if (off < v->phoff)
		return -1;
	if (v->is64) {
		Elf64_Phdr p;
		if (read_at(fd, v, &p, sizeof p, off) < 0)
			return -1;
		*s = (struct seg){p.p_type, p.p_offset, p.p_filesz};
	} else {
		Elf32_Phdr p;
		if (read_at(fd, v, &p, sizeof p, off) < 0)
			return -1;
		*s = (struct seg){p.p_type, p.p_offset, p.p_filesz};
	}
	return 0;
}

/* A note segment holding the Go build ID: owner "Go", type 4.  Notes are
 * 4-byte aligned name and descriptor after a 12-byte header, in both ELF
 * classes (the Go linker writes them so). */
static int note_is_go(int fd, const struct elf_view *v, const struct seg *s)
{
	size_t len = s->filesz < MAX_NOTE ? (size_t)s->filesz : MAX_NOTE;
	if (len < 12)
		return 0;
	unsigned char *buf = malloc(len);
	if (!buf || read_at(fd, v, buf, len, s->offset) < 0) {
		free(buf);
		return 0;
	}
	int go = 0;
	size_t pos = 0;
	while (!go && len - pos >= 12) {
		uint32_t nsz, dsz, type;
		memcpy(&nsz, buf + pos, 4);
		memcpy(&dsz, buf + pos + 4, 4);
		memcpy(&type, buf + pos + 8, 4);
		pos += 12;
		uint64_t nal = ((uint64_t)nsz + 3) & ~(uint64_t)3, dal = ((uint64_t)dsz + 3) & ~(uint64_t)3;
		if (nal > len - pos)
			break;
		go = type == GO_NOTE_BUILDID && nsz == 3 && memcmp(buf + pos, "Go", 3) == 0;
		pos += (size_t)nal;
		if (dal > len - pos)
			break;
		pos += (size_t)dal;
	}
	free(buf);
	return go;
}

/* Section header i's name offset, file offset and size. */
static int read_shdr(int fd, const struct elf_view *v, unsigned i, uint32_t *name, uint64_t *off, uint64_t *size)
{
	uint64_t at = v->shoff + (uint64_t)i * v->shentsize;
	if (at < v->shoff)
		return -1;
	if (v->is64) {
		Elf64_Shdr s;
		if (read_at(fd, v, &s, sizeof s, at) < 0)
			return -1;
		*name = s.sh_name, *off = s.sh_offset, *size = s.sh_size;
	} else {
		Elf32_Shdr s;
		if (read_at(fd, v, &s, sizeof s, at) < 0)
			return -1;
		*name = s.sh_name, *off = s.sh_offset, *size = s.sh_size;
	}
	return 0;
}

/* A section named .go.buildinfo (Go 1.13 and later; kept by strip). */
static int has_go_buildinfo(int fd, const struct elf_view *v)
{
	static const char want[] = ".go.buildinfo";
	size_t entsize = v->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
	if (v->shoff == 0 || v->shnum == 0 || v->shnum > MAX_SHNUM || v->shentsize != entsize ||
	    v->shstrndx >= v->shnum)
		return 0;
	uint32_t nm;
	uint64_t stroff, strsize;
	if (read_shdr(fd, v, v->shstrndx, &nm, &stroff, &strsize) < 0 || strsize == 0)
		return 0;
	size_t len = strsize < MAX_SHSTR ? (size_t)strsize : MAX_SHSTR;
	char *names = malloc(len + 1);
	if (!names || read_at(fd, v, names, len, stroff) < 0) {
		free(names);
		return 0;
	}
	names[len] = '\0';
	int found = 0;
	for (unsigned i = 0; !found && i < v->shnum; i++) {
		uint64_t off, size;
		if (read_shdr(fd, v, i, &nm, &off, &size) < 0)
			break;
		found = nm < len && len - nm >= sizeof want && memcmp(names + nm, want, sizeof want) == 0;
	}
	free(names);
	return found;
}

static enum sfy_prog_kind inspect_elf(int fd, off_t size)
{
	struct elf_view v = {.size = size};
	if (read_header(fd, &v) < 0)
		return SFY_PROG_DYNAMIC;
	int interp = 0, go = 0;
	for (unsigned i = 0; i < v.phnum; i++) {
		struct seg s;
		if (read_seg(fd, &v, i, &s) < 0)
			return SFY_PROG_DYNAMIC; /* truncated: not a program we can judge */
		if (s.type == PT_INTERP)
			interp = 1;
		else if (s.type == PT_NOTE && !go)
			go = note_is_go(fd, &v, &s);
	}
	/* A Go program makes its own system calls whether it is linked
	 * statically or (with cgo) against libc. */
	if (go || has_go_buildinfo(fd, &v))
		return SFY_PROG_GO;
	return interp ? SFY_PROG_DYNAMIC : SFY_PROG_STATIC;
}

enum sfy_prog_kind sfy_prog_inspect(const char *path)
{
	/* File capabilities first: the loader drops LD_PRELOAD for them
	 * whatever the file's format. */
	char cap[64];
	if (getxattr(path, "security.capability", cap, sizeof cap) > 0)
		return SFY_PROG_CAPS;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return SFY_PROG_DYNAMIC;
	struct stat st;
	enum sfy_prog_kind kind = SFY_PROG_DYNAMIC;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		kind = inspect_elf(fd, st.st_size);
	close(fd);
	return kind;
}

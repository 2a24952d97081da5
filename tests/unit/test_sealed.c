/* The sealed-mode launcher's pure parts: the program inspection
 * (sealed/inspect.c) on hand-made, truncated and corrupted ELF files, and
 * the decisions (sealed/decide.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"
#include "sfy_config.h"

static char dir[] = "/tmp/sfy-sealed-unit.XXXXXX";

static const char *write_file(const char *name, const void *data, size_t len)
{
	static char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

/* A minimal 64-bit ELF: header, 3 program headers, a note area, a section
 * name table and 3 section headers.  interp: a PT_INTERP; go_note: a Go
 * build ID note; go_section: a section named .go.buildinfo. */
struct img {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[3];
	unsigned char note[32];
	char shstr[32];
	Elf64_Shdr sh[3];
};

static void make_img(struct img *m, int interp, int go_note, int go_section)
{
	memset(m, 0, sizeof *m);
	memcpy(m->eh.e_ident, ELFMAG, SELFMAG);
	m->eh.e_ident[EI_CLASS] = ELFCLASS64;
	m->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	m->eh.e_ident[EI_VERSION] = EV_CURRENT;
	m->eh.e_type = ET_EXEC;
	m->eh.e_machine = EM_X86_64;
	m->eh.e_phoff = offsetof(struct img, ph);
	m->eh.e_phentsize = sizeof(Elf64_Phdr);
	m->eh.e_phnum = 3;
	m->eh.e_shoff = offsetof(struct img, sh);
	m->eh.e_shentsize = sizeof(Elf64_Shdr);
	m->eh.e_shnum = 3;
	m->eh.e_shstrndx = 1;
	m->ph[0].p_type = PT_LOAD;
	m->ph[1].p_type = interp ? PT_INTERP : PT_NULL;
	m->ph[2].p_type = PT_NOTE;
	m->ph[2].p_offset = offsetof(struct img, note);
	m->ph[2].p_filesz = sizeof m->note;
	uint32_t nh[3] = {3, 4, go_note ? 4 : 1}; /* namesz, descsz, type */
	memcpy(m->note, nh, sizeof nh);
	memcpy(m->note + 12, go_note ? "Go\0" : "GNU", 4);
	memcpy(m->note + 16, "abcd", 4);
	memcpy(m->shstr, "\0.shstrtab\0.go.buildinfo\0", 26);
	if (!go_section)
		m->shstr[12] = 'x'; /* ".gx.buildinfo" */
	m->sh[1].sh_name = 1;
	m->sh[1].sh_offset = offsetof(struct img, shstr);
	m->sh[1].sh_size = sizeof m->shstr;
	m->sh[2].sh_name = 11;
}

static enum sfy_prog_kind inspect_img(const struct img *m, size_t len)
{
	return sfy_prog_inspect(write_file("img", m, len));
}

static void test_kinds(void **state)
{
	(void)state;
	struct img m;
	make_img(&m, 1, 0, 0);
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_DYNAMIC);
	make_img(&m, 0, 0, 0);
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_STATIC);
	make_img(&m, 1, 1, 0); /* a cgo program: dynamic, yet Go */
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_GO);
	make_img(&m, 0, 0, 1); /* the note gone, the section kept */
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_GO);
	make_img(&m, 0, 1, 1);
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_GO);
}

static void test_not_elf(void **state)
{
	(void)state;
	assert_int_equal(sfy_prog_inspect(write_file("script", "#!/bin/sh\necho hi\n", 18)), SFY_PROG_DYNAMIC);
	assert_int_equal(sfy_prog_inspect(write_file("empty", "", 0)), SFY_PROG_DYNAMIC);
	assert_int_equal(sfy_prog_inspect(write_file("magic", ELFMAG, SELFMAG)), SFY_PROG_DYNAMIC);
	assert_int_equal(sfy_prog_inspect("/nonexistent/prog"), SFY_PROG_DYNAMIC);
	assert_int_equal(sfy_prog_inspect(dir), SFY_PROG_DYNAMIC); /* a directory */
	assert_int_equal(sfy_prog_inspect("/dev/null"), SFY_PROG_DYNAMIC);
}

/* Hostile headers: counts, sizes and offsets pointing anywhere. */
static void test_hostile_headers(void **state)
{
	(void)state;
	struct img m;
	make_img(&m, 0, 0, 0);
	m.eh.e_phnum = 0xffff; /* past the file */
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_DYNAMIC);
	make_img(&m, 0, 0, 0);
	m.eh.e_phoff = ~0ULL - 8; /* overflows offset + i * size */
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_DYNAMIC);
	make_img(&m, 0, 0, 0);
	m.eh.e_phentsize = 1;
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_DYNAMIC);
	make_img(&m, 0, 1, 0);
	m.ph[2].p_filesz = ~0ULL; /* a note bigger than the file */
	m.ph[2].p_offset = ~0ULL - 4;
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_STATIC);
	make_img(&m, 0, 0, 0);
	uint32_t huge[3] = {0xfffffff0u, 0xfffffff0u, 4};
	memcpy(m.note, huge, sizeof huge); /* name and descriptor sizes past the segment */
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_STATIC);
	make_img(&m, 0, 0, 1);
	m.eh.e_shstrndx = 7; /* no such section */
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_STATIC);
	make_img(&m, 0, 0, 1);
	m.sh[2].sh_name = 0xfffffff0u; /* a name past the table */
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_STATIC);
	make_img(&m, 0, 0, 1);
	m.sh[2].sh_name = sizeof m.shstr - 3; /* a name running off the table's end */
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_STATIC);
	make_img(&m, 0, 0, 1);
	m.eh.e_shnum = 60000;
	assert_int_equal(inspect_img(&m, sizeof m), SFY_PROG_STATIC);
}

/* Every truncation of a real program and of the hand-made image, and
 * bytes flipped through their headers: never a crash (ASan watches), and a
 * truncation inside the headers is never taken for static. */
static void test_truncated_and_flipped(void **state)
{
	(void)state;
	struct img m;
	make_img(&m, 1, 0, 0);
	for (size_t len = 0; len < sizeof m; len++)
		(void)inspect_img(&m, len);
	for (size_t len = 0; len < offsetof(struct img, note); len++)
		assert_int_equal(inspect_img(&m, len), SFY_PROG_DYNAMIC);
	unsigned seed = 17;
	for (int round = 0; round < 2000; round++) {
		make_img(&m, round & 1, round & 2, round & 4);
		unsigned char *b = (unsigned char *)&m;
		for (int k = 0; k < 4; k++) {
			seed = seed * 1103515245u + 12345u;
			b[SELFMAG + (seed >> 8) % (sizeof m - SELFMAG)] ^= (unsigned char)(seed >> 20);
		}
		enum sfy_prog_kind kind = inspect_img(&m, sizeof m);
		assert_true(kind == SFY_PROG_DYNAMIC || kind == SFY_PROG_STATIC || kind == SFY_PROG_GO);
	}
	/* A real program cut short. */
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	static unsigned char exe[65536];
	ssize_t n = read(fd, exe, sizeof exe);
	close(fd);
	assert_true(n > 4096);
	assert_int_equal(inspect_img((const struct img *)exe, (size_t)n), SFY_PROG_DYNAMIC);
	for (size_t len = 0; len < 4096; len += 7)
		assert_int_not_equal(inspect_img((const struct img *)exe, len), SFY_PROG_STATIC);
}

static void test_modes_and_decisions(void **state)
{
	(void)state;
	assert_int_equal(sfy_sealed_mode_parse("yes"), SFY_SEALED_YES);
	assert_int_equal(sfy_sealed_mode_parse("1"), SFY_SEALED_YES);
	assert_int_equal(sfy_sealed_mode_parse("TRUE"), SFY_SEALED_YES);
	assert_int_equal(sfy_sealed_mode_parse("no"), SFY_SEALED_NO);
	assert_int_equal(sfy_sealed_mode_parse("0"), SFY_SEALED_NO);
	assert_int_equal(sfy_sealed_mode_parse("false"), SFY_SEALED_NO);
	assert_int_equal(sfy_sealed_mode_parse("auto"), SFY_SEALED_AUTO);
	assert_int_equal(sfy_sealed_mode_parse("sometimes"), -1);
	assert_int_equal(sfy_sealed_mode_parse(""), -1);
	assert_int_equal(sfy_sealed_mode_parse(NULL), -1);
	for (int k = SFY_PROG_DYNAMIC; k <= SFY_PROG_CAPS; k++)
		assert_int_equal(sfy_launch_decide(SFY_SEALED_YES, k), SFY_LAUNCH_SEAL);
	assert_int_equal(sfy_launch_decide(SFY_SEALED_AUTO, SFY_PROG_DYNAMIC), SFY_LAUNCH_EXEC);
	assert_int_equal(sfy_launch_decide(SFY_SEALED_AUTO, SFY_PROG_STATIC), SFY_LAUNCH_SEAL);
	assert_int_equal(sfy_launch_decide(SFY_SEALED_AUTO, SFY_PROG_GO), SFY_LAUNCH_SEAL);
	assert_int_equal(sfy_launch_decide(SFY_SEALED_AUTO, SFY_PROG_CAPS), SFY_LAUNCH_SEAL);
	assert_int_equal(sfy_launch_decide(SFY_SEALED_NO, SFY_PROG_DYNAMIC), SFY_LAUNCH_EXEC);
	assert_int_equal(sfy_launch_decide(SFY_SEALED_NO, SFY_PROG_STATIC), SFY_LAUNCH_WARN_EXEC);
	assert_int_equal(sfy_launch_decide(SFY_SEALED_NO, SFY_PROG_GO), SFY_LAUNCH_WARN_EXEC);
	assert_int_equal(sfy_launch_decide(SFY_SEALED_NO, SFY_PROG_CAPS), SFY_LAUNCH_REFUSE);
	assert_string_equal(sfy_prog_kind_word(SFY_PROG_GO), "go");
	assert_string_equal(sfy_prog_kind_word(SFY_PROG_CAPS), "caps");
}

/* Nested sealed mode: the launcher inside a sealed tree sees Seccomp: 2. */
static void test_status_filter(void **state)
{
	(void)state;
	assert_true(sfy_status_has_filter("Name:\tx\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n"));
	assert_false(sfy_status_has_filter("Name:\tx\nSeccomp:\t0\nSeccomp_filters:\t0\n"));
	assert_false(sfy_status_has_filter("Name:\tx\nSeccomp:\t1\n")); /* strict mode */
	assert_false(sfy_status_has_filter("Name:\tSeccomp: 2\n"));
	assert_false(sfy_status_has_filter("Seccomp_filters:\t2\n"));
	assert_false(sfy_status_has_filter(""));
	assert_false(sfy_status_has_filter(NULL));
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char path[256];
	static const char *const names[] = {"img", "script", "empty", "magic"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		unlink(path);
	}
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_not_elf),
		cmocka_unit_test(test_hostile_headers),
		cmocka_unit_test(test_truncated_and_flipped),
		cmocka_unit_test(test_modes_and_decisions),
		cmocka_unit_test(test_status_filter),
	};
	return cmocka_run_group_tests_name("sealed", tests, setup, teardown);
}

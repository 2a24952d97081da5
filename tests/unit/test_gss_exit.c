/* Unit tests for GSS-API at exit (shim/gss.c): once the gate is shut (the
 * library's last destructor does it, before Kerberos's destructors destroy
 * its mutexes), every call fails cleanly with ESHUTDOWN instead of going
 * into libkrb5, and freeing a context touches only our memory.  Its own
 * program: the shutdown cannot be undone. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sfy_gss.h"

/* After the shutdown, Kerberos's memory for a context is left to the
 * process's end, on purpose: no leak report for it. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}

static void calls_after_shutdown_fail_cleanly(void **state)
{
	(void)state;
	char err[SFY_GSS_ERR_MAX];
	uint8_t out[256], plain[16] = "sixteen octets!";
	size_t n = 99;
	int kinit = 7;
	if (sfy_gss_load(err, sizeof err) < 0)
		skip();
	/* Made while the library is open: importing the name needs no KDC. */
	struct sfy_gss *g = sfy_gss_new("rcmd@proxy.test", SFY_GSS_CONFIDENTIALITY, err, sizeof err);
	assert_non_null(g);
	struct sfy_gss *g2 = sfy_gss_new("rcmd@proxy.test", SFY_GSS_INTEGRITY, err, sizeof err);
	assert_non_null(g2);

	sfy_gss_shutdown();

	errno = 0;
	assert_int_equal(sfy_gss_step(g, NULL, 0, out, sizeof out, &n, &kinit), -1);
	assert_int_equal(errno, ESHUTDOWN);
	assert_int_equal(n, 0);
	assert_int_equal(kinit, 0);
	assert_non_null(strstr(sfy_gss_error(g), "exiting"));

	err[0] = 0;
	errno = 0;
	assert_int_equal(sfy_gss_wrap(g, -1, plain, sizeof plain, out, sizeof out, err, sizeof err), -1);
	assert_int_equal(errno, ESHUTDOWN);
	assert_non_null(strstr(err, "exiting"));
	errno = 0;
	assert_int_equal(sfy_gss_unwrap(g, -1, out, 40, plain, sizeof plain, NULL, 0), -1);
	assert_int_equal(errno, ESHUTDOWN);
	/* No call into the library: the fallback size. */
	assert_true(sfy_gss_max_input(g2) > 0);

	err[0] = 0;
	errno = 0;
	assert_null(sfy_gss_new("rcmd@proxy.test", SFY_GSS_INTEGRITY, err, sizeof err));
	assert_int_equal(errno, ESHUTDOWN);
	assert_non_null(strstr(err, "exiting"));

	errno = EINTR;
	sfy_gss_free(g); /* our memory only; errno kept */
	sfy_gss_free(g2);
	assert_int_equal(errno, EINTR);
}

static void shutdown_twice_is_harmless(void **state)
{
	(void)state;
	sfy_gss_shutdown();
	sfy_gss_shutdown();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(calls_after_shutdown_fail_cleanly),
		cmocka_unit_test(shutdown_twice_is_harmless),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

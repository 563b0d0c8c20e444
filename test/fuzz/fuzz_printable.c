/*-------------------------------------------------------------------------
 *
 * fuzz_printable.c
 *		  libFuzzer target: parse_printable, which turns reply bytes (HTML
 *		  pages, error details, Content-Types) into text for errdetail.
 *
 * The input is any byte string, passed with its length (it may hold NULs).
 * It is made printable into destinations of several sizes, each allocated
 * to its exact size so that ASan sees any overrun; size 0 must write
 * nothing at all.
 *
 * Checked against a reference written here the obvious way (split on runs
 * of white space, drop empty words, join with one space, '?' for any byte
 * outside printable ASCII): the output is that reference cut to the
 * destination and stripped of a trailing space.  So it is terminated,
 * printable, on one line, never longer than the destination allows, and a
 * prefix of what a larger destination gets; and making it printable again
 * changes nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

static bool
is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The reference: malloc'd, terminated; *reflen gets its length. */
static char *
reference(const uint8_t *data, size_t size, size_t *reflen)
{
	char	   *ref = malloc(size + 1);
	size_t		i = 0,
				o = 0;

	FUZZ_CHECK(ref != NULL);
	while (i < size)
	{
		while (i < size && is_ws(data[i]))
			i++;
		if (i == size)
			break;
		if (o > 0)
			ref[o++] = ' ';
		while (i < size && !is_ws(data[i]))
		{
			ref[o++] = (data[i] >= 0x20 && data[i] < 0x7f) ? (char) data[i] : '?';
			i++;
		}
	}
	ref[o] = '\0';
	*reflen = o;
	return ref;
}

static void
check_size(const uint8_t *data, size_t size, const char *ref, size_t reflen,
		   size_t dstlen)
{
	char	   *dst = malloc(dstlen);
	char	   *again;
	size_t		want,
				len;

	FUZZ_CHECK(dst != NULL);
	memset(dst, 'Z', dstlen);
	parse_printable((const char *) data, size, dst, dstlen);

	fuzz_check_terminated(dst, dstlen);
	len = strlen(dst);
	fuzz_check_printable(dst);

	want = reflen < dstlen - 1 ? reflen : dstlen - 1;
	while (want > 0 && ref[want - 1] == ' ')
		want--;
	FUZZ_CHECK(len == want);
	FUZZ_CHECK(memcmp(dst, ref, len) == 0);

	/* Idempotent: printable text comes back unchanged. */
	again = malloc(dstlen);
	FUZZ_CHECK(again != NULL);
	parse_printable(dst, len, again, dstlen);
	FUZZ_CHECK(strcmp(dst, again) == 0);

	free(again);
	free(dst);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t sizes[] = {1, 2, 3, 16, 64, 128, 256, 512};
	size_t		reflen,
				i;
	char	   *ref = reference(data, size, &reflen);
	char	   *none = malloc(1);

	/* dstlen 0: not even the terminator. */
	FUZZ_CHECK(none != NULL);
	none[0] = 'Z';
	parse_printable((const char *) data, size, none, 0);
	FUZZ_CHECK(none[0] == 'Z');
	free(none);

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_size(data, size, ref, reflen, sizes[i]);
	check_size(data, size, ref, reflen, size + 1);	/* room for everything */

	free(ref);
	return 0;
}

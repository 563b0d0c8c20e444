/*-------------------------------------------------------------------------
 *
 * fuzz_common.h
 *		  Helpers shared by the libFuzzer targets of opsmig_fdw (test/fuzz).
 *
 * Each target links ../../api_parse.c directly: it is plain C over json-c,
 * so the fuzzers run exactly the code the extension runs, without a
 * PostgreSQL backend.  The targets feed the fuzzer's bytes to the parsers
 * the way api_*.c does (an exact-length buffer, never NUL-terminated, so
 * that ASan sees any read past the reply), then check invariants that
 * api_*.c relies on.  A broken invariant aborts, which libFuzzer reports as
 * a crash and saves the input under test/fuzz/build/artifacts/.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPSMIG_FUZZ_COMMON_H
#define OPSMIG_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api_parse.h"

/* api_batch.c's size for the "why" buffers it hands the parsers. */
#define FUZZ_WHYLEN		160

/*
 * Abort with a message naming the broken invariant.  Not assert(): the
 * check must stay in whatever way the harness is compiled.
 */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz: invariant failed: %s (%s:%d)\n", \
					#cond, __FILE__, __LINE__); \
			abort(); \
		} \
	} while (0)

/*
 * The (envelope, HTTP code) pairs every reply is parsed under: plain and
 * enveloped 200s, and a non-200 with envelope on, which must not be
 * unwrapped (the digest challenge and proxy pages arrive like that).
 */
typedef struct FuzzMode
{
	bool		envelope;
	long		http_code;
} FuzzMode;

static const FuzzMode fuzz_modes[] = {
	{false, 200},
	{true, 200},
	{true, 404},
};

#define FUZZ_NMODES		(sizeof(fuzz_modes) / sizeof(fuzz_modes[0]))

/* A string the caller handed a buffer of cap bytes for must end in it. */
static inline void
fuzz_check_terminated(const char *s, size_t cap)
{
	FUZZ_CHECK(cap > 0);
	FUZZ_CHECK(memchr(s, '\0', cap) != NULL);
}

/*
 * parse_printable's promise: printable ASCII only, no leading, trailing or
 * doubled space.  api_*.c puts such text straight into errdetail.
 */
static inline void
fuzz_check_printable(const char *s)
{
	size_t		n = strlen(s),
				i;

	for (i = 0; i < n; i++)
	{
		FUZZ_CHECK((unsigned char) s[i] >= 0x20 && (unsigned char) s[i] < 0x7f);
		if (s[i] == ' ')
			FUZZ_CHECK(i > 0 && i + 1 < n && s[i + 1] != ' ');
	}
}

/*
 * Parse body under one mode and check what every caller relies on: the
 * result is one of the four, a failure explains itself in a terminated
 * "why", and the reply's pointers are consistent with the result.  The
 * caller owns *reply afterwards (parse_reply_free), as api_scan.c does.
 */
static inline OpsmigParseResult
fuzz_parse(const uint8_t *data, size_t size, const FuzzMode *mode,
		   OpsmigReply *reply)
{
	char	   *why = malloc(FUZZ_WHYLEN);	/* exact size: ASan sees overruns */
	OpsmigParseResult pr;
	size_t		i;
	bool		blank = true;

	FUZZ_CHECK(why != NULL);
	why[0] = '\0';
	pr = parse_reply((const char *) data, size, mode->envelope,
							mode->http_code, reply, why, FUZZ_WHYLEN);

	for (i = 0; i < size; i++)
		if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r' && data[i] != '\n')
			blank = false;

	/* Blank, and only blank, is empty: whitespace around JSON is allowed. */
	FUZZ_CHECK(blank == (pr == OPSMIG_PARSE_EMPTY));

	switch (pr)
	{
		case OPSMIG_PARSE_OK:
			FUZZ_CHECK(reply->root != NULL);
			if (mode->envelope && mode->http_code == 200)
			{
				/* The envelope's status replaces the HTTP code. */
				struct json_object *content = NULL;

				FUZZ_CHECK(reply->code >= 100 && reply->code <= 599);
				FUZZ_CHECK(json_object_object_get_ex(reply->root, "content", &content));
				FUZZ_CHECK(reply->content == content);
			}
			else
			{
				FUZZ_CHECK(reply->content == reply->root);
				FUZZ_CHECK(reply->code == mode->http_code);
			}
			break;
		case OPSMIG_PARSE_EMPTY:
		case OPSMIG_PARSE_NOT_JSON:
			/* A failed parse keeps nothing: no document to leak. */
			FUZZ_CHECK(reply->root == NULL && reply->content == NULL);
			break;
		case OPSMIG_PARSE_BAD_SHAPE:
			/* Only an envelope can have the wrong shape at this stage. */
			FUZZ_CHECK(mode->envelope && mode->http_code == 200);
			FUZZ_CHECK(reply->root != NULL);
			break;
		default:
			FUZZ_CHECK(!"parse_reply returned an unknown result");
	}
	if (pr != OPSMIG_PARSE_OK)
	{
		fuzz_check_terminated(why, FUZZ_WHYLEN);
		FUZZ_CHECK(why[0] != '\0');
	}
	free(why);
	return pr;
}

#endif							/* OPSMIG_FUZZ_COMMON_H */

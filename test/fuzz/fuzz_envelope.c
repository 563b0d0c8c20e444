/*-------------------------------------------------------------------------
 *
 * fuzz_envelope.c
 *		  libFuzzer target: parse_reply itself, with the envelope off
 *		  and on ({"status": <HTTP code>, "content": <body>}).
 *
 * The input is any reply body.  It is parsed under each mode of
 * fuzz_common.h, whose fuzz_parse checks the result against the reply's
 * pointers (an unwrapped envelope has a code in 100..599 and its content
 * borrowed from the document; anything else keeps the HTTP code), and
 * once more with the envelope on after a plain parse, to check the two
 * agree: an enveloped 200 parses as JSON exactly when the plain one does.
 * Also tried: a NULL or one-byte "why" buffer, which set_why must respect.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	OpsmigReply plain,
				env,
				quiet;
	OpsmigParseResult pr_plain,
				pr_env,
				pr_quiet;
	char	   *why1 = malloc(1);
	size_t		m;

	for (m = 0; m < FUZZ_NMODES; m++)
	{
		OpsmigReply reply;

		(void) fuzz_parse(data, size, &fuzz_modes[m], &reply);
		parse_reply_free(&reply);
	}

	pr_plain = fuzz_parse(data, size, &fuzz_modes[0], &plain);
	pr_env = fuzz_parse(data, size, &fuzz_modes[1], &env);
	if (pr_plain != OPSMIG_PARSE_OK)
		FUZZ_CHECK(pr_env == pr_plain);
	else
	{
		FUZZ_CHECK(pr_env == OPSMIG_PARSE_OK || pr_env == OPSMIG_PARSE_BAD_SHAPE);
		/* Same document (compared as text: NaN is not equal to itself). */
		FUZZ_CHECK(strcmp(json_object_to_json_string(plain.root),
						  json_object_to_json_string(env.root)) == 0);
	}

	/* "why" may be absent or tiny: never written past. */
	pr_quiet = parse_reply((const char *) data, size, true, 200, &quiet,
						   NULL, 0);
	FUZZ_CHECK(pr_quiet == pr_env);
	parse_reply_free(&quiet);
	FUZZ_CHECK(why1 != NULL);
	why1[0] = 'x';
	pr_quiet = parse_reply((const char *) data, size, true, 200, &quiet,
						   why1, 1);
	FUZZ_CHECK(pr_quiet == pr_env);
	FUZZ_CHECK(pr_quiet == OPSMIG_PARSE_OK || why1[0] == '\0');
	parse_reply_free(&quiet);

	parse_reply_free(&plain);
	parse_reply_free(&env);
	free(why1);
	return 0;
}

/*-------------------------------------------------------------------------
 *
 * fuzz_error.c
 *		  libFuzzer target: an error reply, the API's JSON error document
 *		  {"detail", "error", "errorCode", "parameters", "reason"} or
 *		  whatever a proxy sends instead (HTML, nothing).
 *
 * The input is the body of a reply with an error code.  As in api_*.c
 * (api_settle, then api_report_http) it goes through parse_reply
 * under each mode of fuzz_common.h and then to parse_reply_error with the
 * reply when the parse succeeded, else with NULL; the raw body is always
 * passed as well.  Also tried: the reply even after a failed parse, and a
 * missing body (NULL, 0).  The same reply also goes to
 * parse_reply_ratelimit, the parameters of a 429.
 *
 * Checked: every field is terminated within its array and printable (the
 * fields go straight into errdetail); each JSON field is exactly what
 * parse_printable makes of its member (a string in a JSON object), or
 * empty; "json" says whether one of them is set; and without JSON the
 * excerpt is exactly what parse_printable makes of the body.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

/*
 * What one field must hold: the member made printable, when it is a
 * string of a JSON object, else nothing.
 */
static void
check_field(const OpsmigReply *reply, const char *key, const char *field,
			size_t fieldlen)
{
	struct json_object *v;
	char	   *expect = malloc(fieldlen);

	FUZZ_CHECK(expect != NULL);
	expect[0] = '\0';
	if (reply != NULL && reply->content != NULL &&
		json_object_is_type(reply->content, json_type_object) &&
		json_object_object_get_ex(reply->content, key, &v) &&
		json_object_is_type(v, json_type_string))
		parse_printable(json_object_get_string(v),
						(size_t) json_object_get_string_len(v), expect, fieldlen);
	FUZZ_CHECK(strcmp(expect, field) == 0);
	free(expect);
}

static void
check_error(const OpsmigReply *reply, const uint8_t *data, size_t size)
{
	OpsmigApiError *err = malloc(sizeof(OpsmigApiError));

	FUZZ_CHECK(err != NULL);
	memset(err, 0x7f, sizeof(*err));	/* garbage: the function must set all */
	parse_reply_error(reply, (const char *) data, size, err);

	fuzz_check_terminated(err->error_code, sizeof(err->error_code));
	fuzz_check_terminated(err->detail, sizeof(err->detail));
	fuzz_check_terminated(err->reason, sizeof(err->reason));
	fuzz_check_terminated(err->excerpt, sizeof(err->excerpt));
	fuzz_check_printable(err->error_code);
	fuzz_check_printable(err->detail);
	fuzz_check_printable(err->reason);
	fuzz_check_printable(err->excerpt);

	check_field(reply, "errorCode", err->error_code, sizeof(err->error_code));
	check_field(reply, "detail", err->detail, sizeof(err->detail));
	check_field(reply, "reason", err->reason, sizeof(err->reason));
	FUZZ_CHECK(err->json == (err->error_code[0] || err->detail[0] || err->reason[0]));
	if (err->json)
		FUZZ_CHECK(reply != NULL && reply->content != NULL && err->excerpt[0] == '\0');
	else
	{
		char		expect[sizeof(err->excerpt)];

		expect[0] = '\0';
		if (data != NULL)
			parse_printable((const char *) data, size, expect, sizeof(expect));
		FUZZ_CHECK(strcmp(expect, err->excerpt) == 0);
	}
	free(err);
}

/* A 429's bucket: either nothing, or numbers in their documented ranges. */
static void
check_ratelimit(const OpsmigReply *reply)
{
	OpsmigRateLimitParams p;

	memset(&p, 0x7f, sizeof(p));
	parse_reply_ratelimit(reply, &p);
	if (p.valid)
		FUZZ_CHECK(p.retry_after >= 0 && p.retry_after <= 86400 &&
				   p.capacity >= 1 && p.refill > 0 && p.refill_seconds > 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		m;

	for (m = 0; m < FUZZ_NMODES; m++)
	{
		OpsmigReply reply;
		OpsmigParseResult pr;

		pr = fuzz_parse(data, size, &fuzz_modes[m], &reply);
		check_error(pr == OPSMIG_PARSE_OK ? &reply : NULL, data, size);
		check_error(&reply, data, size);
		check_error(&reply, NULL, 0);
		check_ratelimit(pr == OPSMIG_PARSE_OK ? &reply : NULL);
		check_ratelimit(&reply);
		parse_reply_free(&reply);
	}
	return 0;
}

/*-------------------------------------------------------------------------
 *
 * fuzz_status.c
 *		  libFuzzer target: a link status reply, {"status": "SYNCED"}.
 *
 * The input is the body of a 2xx reply to GET .../migrationLink/status or
 * POST .../migrationLink.  As in api_*.c (api_settle, then api_reply_status),
 * it goes through parse_reply under each mode of fuzz_common.h and
 * then to parse_reply_status whatever the parse said: a body that is not
 * JSON reaches parse_reply_status with no document.  The status buffer is
 * api_batch.c's size (OPSMIG_STATUS_MAX + 1) and, once more, a small one, each
 * allocated to its exact size so that ASan sees any overrun.
 *
 * Checked: a status is accepted only as a non-empty, terminated string of
 * at most OPSMIG_STATUS_MAX bytes without control characters, equal to the
 * document's "status" member; otherwise "why" explains.  The same body is
 * also read as a create reply, whose "status" may be missing.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

static void
check_status(const OpsmigReply *reply, size_t statuslen)
{
	char	   *status = malloc(statuslen);
	char	   *why = malloc(FUZZ_WHYLEN);
	OpsmigParseResult pr;

	FUZZ_CHECK(status != NULL && why != NULL);
	why[0] = '\0';
	pr = parse_reply_status(reply, status, statuslen, why, FUZZ_WHYLEN);
	if (pr == OPSMIG_PARSE_OK)
	{
		struct json_object *v = NULL;
		size_t		len,
					i;

		fuzz_check_terminated(status, statuslen);
		len = strlen(status);
		FUZZ_CHECK(len > 0 && len <= OPSMIG_STATUS_MAX && len < statuslen);
		for (i = 0; i < len; i++)
			FUZZ_CHECK((unsigned char) status[i] >= 0x20 && status[i] != 0x7f);

		/* It is the document's own "status", byte for byte and whole. */
		FUZZ_CHECK(reply->content != NULL);
		FUZZ_CHECK(json_object_object_get_ex(reply->content, "status", &v));
		FUZZ_CHECK(json_object_is_type(v, json_type_string));
		FUZZ_CHECK((size_t) json_object_get_string_len(v) == len);
		FUZZ_CHECK(memcmp(json_object_get_string(v), status, len) == 0);
	}
	else
	{
		FUZZ_CHECK(pr == OPSMIG_PARSE_BAD_SHAPE);
		fuzz_check_terminated(why, FUZZ_WHYLEN);
		FUZZ_CHECK(why[0] != '\0');
	}
	free(status);
	free(why);
}

/*
 * The same body as a create reply (parse_reply_create_status): a missing
 * or null "status" is accepted as none (empty string); one that is there
 * is held to the status rules; a document that is not an object is not.
 * And the error-document test that tells "no link" from a wrong base_url.
 */
static void
check_create(const OpsmigReply *reply, size_t statuslen)
{
	char	   *status = malloc(statuslen);
	char	   *why = malloc(FUZZ_WHYLEN);
	OpsmigParseResult pr;

	FUZZ_CHECK(status != NULL && why != NULL);
	why[0] = '\0';
	pr = parse_reply_create_status(reply, status, statuslen, why, FUZZ_WHYLEN);
	if (pr == OPSMIG_PARSE_OK)
	{
		fuzz_check_terminated(status, statuslen);
		if (status[0] != '\0')
			FUZZ_CHECK(parse_reply_status(reply, status, statuslen, why,
										  FUZZ_WHYLEN) == OPSMIG_PARSE_OK);
		else
			FUZZ_CHECK(reply->content == NULL ||
					   json_object_is_type(reply->content, json_type_object));
	}
	else
	{
		FUZZ_CHECK(pr == OPSMIG_PARSE_BAD_SHAPE);
		fuzz_check_terminated(why, FUZZ_WHYLEN);
		FUZZ_CHECK(why[0] != '\0');
	}
	if (parse_reply_is_api_error(reply, 404))
		FUZZ_CHECK(json_object_is_type(reply->content, json_type_object));
	free(status);
	free(why);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		m;

	for (m = 0; m < FUZZ_NMODES; m++)
	{
		OpsmigReply reply;

		(void) fuzz_parse(data, size, &fuzz_modes[m], &reply);
		check_status(&reply, OPSMIG_STATUS_MAX + 1);
		check_status(&reply, 8);
		check_create(&reply, OPSMIG_STATUS_MAX + 1);
		check_create(&reply, 8);
		parse_reply_free(&reply);
		FUZZ_CHECK(reply.root == NULL && reply.content == NULL);
	}
	return 0;
}

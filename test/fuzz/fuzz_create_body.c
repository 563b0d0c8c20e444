/*-------------------------------------------------------------------------
 *
 * fuzz_create_body.c
 *		  libFuzzer target: parse_create_body, which builds the body of
 *		  POST .../migrationLink, {"linkToken": "<token>"}, from a token the
 *		  user typed.
 *
 * The input, cut at its first NUL, is the token (a C string, as api_*.c
 * passes it).  The body must round-trip: json-c parses it back to an
 * object whose only member is "linkToken", a string equal to the token
 * byte for byte, whatever the token holds (quotes, backslashes, control
 * characters, bytes that are not UTF-8).  It must also be JSON any strict
 * server accepts (no raw control character) and a reply parse_reply
 * accepts, and it must be malloc'd: free() is how api_*.c releases it.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *token = malloc(size + 1);
	char	   *body;
	size_t		toklen,
				bodylen,
				i;
	struct json_tokener *tok;
	struct json_object *doc,
			   *v = NULL;
	OpsmigReply reply;

	FUZZ_CHECK(token != NULL);
	memcpy(token, data, size);
	token[size] = '\0';
	toklen = strlen(token);

	body = parse_create_body(token);
	FUZZ_CHECK(body != NULL);
	bodylen = strlen(body);
	for (i = 0; i < bodylen; i++)
		FUZZ_CHECK((unsigned char) body[i] >= 0x20);

	/* Parse back with json-c alone, strictly, and compare. */
	tok = json_tokener_new();
	FUZZ_CHECK(tok != NULL);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	doc = json_tokener_parse_ex(tok, body, (int) bodylen + 1);
	FUZZ_CHECK(json_tokener_get_error(tok) == json_tokener_success);
	json_tokener_free(tok);
	FUZZ_CHECK(json_object_is_type(doc, json_type_object));
	FUZZ_CHECK(json_object_object_length(doc) == 1);
	FUZZ_CHECK(json_object_object_get_ex(doc, "linkToken", &v));
	FUZZ_CHECK(json_object_is_type(v, json_type_string));
	FUZZ_CHECK((size_t) json_object_get_string_len(v) == toklen);
	FUZZ_CHECK(memcmp(json_object_get_string(v), token, toklen) == 0);
	json_object_put(doc);

	/* What we send is JSON by our own parser's definition too. */
	FUZZ_CHECK(fuzz_parse((const uint8_t *) body, bodylen, &fuzz_modes[0],
						  &reply) == OPSMIG_PARSE_OK);
	parse_reply_free(&reply);

	free(body);
	free(token);
	return 0;
}

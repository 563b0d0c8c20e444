/*-------------------------------------------------------------------------
 *
 * fuzz_orgs.c
 *		  libFuzzer target: one page of GET /orgs,
 *		  {"links": [{"rel": "next", ...}], "results": [{"id", "name"}], ...}.
 *
 * The input is the body of a 2xx reply to GET /orgs.  As in api_*.c
 * (api_settle, then api_scan_page) it goes through parse_reply
 * under each mode of fuzz_common.h and then to parse_reply_orgs whatever
 * the parse said.
 *
 * Checked, in the callback: every id is 24 lower-case hex digits and
 * terminated (api_*.c uses it as a hash key and in a URL), every name is
 * NULL or a terminated string equal to the document's "name" (api_*.c
 * converts it with strlen).  After the walk: on success the count matches
 * the callbacks and the "results" array; on failure "why" explains and
 * nothing claims a next page.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

typedef struct OrgWalk
{
	struct json_object *results;	/* the page's "results", to compare with */
	int			calls;
} OrgWalk;

static void
org_cb(const char *id, const char *name, void *arg)
{
	OrgWalk    *walk = (OrgWalk *) arg;
	struct json_object *org,
			   *v;
	size_t		len;

	FUZZ_CHECK(id != NULL);
	FUZZ_CHECK(strlen(id) == OPSMIG_ORG_ID_LEN);
	FUZZ_CHECK(parse_valid_org_id(id));
	FUZZ_CHECK(strspn(id, "0123456789abcdef") == OPSMIG_ORG_ID_LEN);

	/* The callbacks come in array order, one per element. */
	FUZZ_CHECK(walk->results != NULL);
	FUZZ_CHECK((size_t) walk->calls < json_object_array_length(walk->results));
	org = json_object_array_get_idx(walk->results, walk->calls);
	FUZZ_CHECK(json_object_object_get_ex(org, "id", &v));
	FUZZ_CHECK(strcmp(json_object_get_string(v), id) == 0);

	if (name != NULL)
	{
		len = strlen(name);
		FUZZ_CHECK(json_object_object_get_ex(org, "name", &v));
		FUZZ_CHECK(json_object_is_type(v, json_type_string));
		FUZZ_CHECK((size_t) json_object_get_string_len(v) == len);
		FUZZ_CHECK(memcmp(json_object_get_string(v), name, len) == 0);
	}
	walk->calls++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		m;

	for (m = 0; m < FUZZ_NMODES; m++)
	{
		OpsmigReply reply;
		OrgWalk		walk = {NULL, 0};
		char	   *why = malloc(FUZZ_WHYLEN);
		int			nresults = -1;
		bool		has_next = true;
		OpsmigParseResult pr;

		FUZZ_CHECK(why != NULL);
		why[0] = '\0';
		(void) fuzz_parse(data, size, &fuzz_modes[m], &reply);
		if (reply.content != NULL &&
			json_object_is_type(reply.content, json_type_object))
			json_object_object_get_ex(reply.content, "results", &walk.results);

		pr = parse_reply_orgs(&reply, org_cb, &walk, &nresults, &has_next,
							  why, FUZZ_WHYLEN);
		if (pr == OPSMIG_PARSE_OK)
		{
			FUZZ_CHECK(json_object_is_type(walk.results, json_type_array));
			FUZZ_CHECK(nresults == walk.calls);
			FUZZ_CHECK((size_t) nresults == json_object_array_length(walk.results));
		}
		else
		{
			FUZZ_CHECK(pr == OPSMIG_PARSE_BAD_SHAPE);
			FUZZ_CHECK(nresults == 0 && !has_next);
			fuzz_check_terminated(why, FUZZ_WHYLEN);
			FUZZ_CHECK(why[0] != '\0');
		}
		parse_reply_free(&reply);
		free(why);
	}
	return 0;
}

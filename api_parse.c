/*-------------------------------------------------------------------------
 *
 * api_parse.c
 *		  Parsers for the Ops Manager API's replies (status, organizations
 *		  page, error body, envelope) and the builder of the create body.
 *
 * Plain C over json-c, with no PostgreSQL dependency, so that the fuzz
 * targets exercise exactly the code the extension runs.  Replies are
 * untrusted input: every length is bounded, every type is checked, unknown
 * fields are ignored, and text that may reach a message is made printable.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api_parse.h"

/* A number macro as a string literal, so messages stay literal. */
#define PARSE_STR(x)	#x
#define PARSE_XSTR(x)	PARSE_STR(x)

static void
set_why(char *why, size_t whylen, const char *msg)
{
	if (why && whylen > 0)
		snprintf(why, whylen, "%s", msg);
}

bool
parse_valid_org_id(const char *s)
{
	int			i;

	if (s == NULL)
		return false;
	for (i = 0; i < OPSMIG_ORG_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[OPSMIG_ORG_ID_LEN] == '\0';
}

/*
 * Copy at most dstlen-1 bytes of src, replacing control characters and
 * non-ASCII bytes with '?' and runs of white space with one space, so the
 * result is safe in any server encoding and on one line.
 */
void
parse_printable(const char *src, size_t len, char *dst, size_t dstlen)
{
	size_t		i,
				o = 0;
	bool		space = false;

	if (dstlen == 0)
		return;
	for (i = 0; i < len && o + 1 < dstlen; i++)
	{
		unsigned char c = (unsigned char) src[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
		{
			if (!space && o > 0)
				dst[o++] = ' ';
			space = true;
			continue;
		}
		space = false;
		dst[o++] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
	}
	while (o > 0 && dst[o - 1] == ' ')
		o--;
	dst[o] = '\0';
}

OpsmigParseResult
parse_reply(const char *body, size_t len, bool envelope, long http_code,
			OpsmigReply *reply, char *why, size_t whylen)
{
	struct json_tokener *tok;
	struct json_object *root;
	enum json_tokener_error jerr;
	size_t		end,
				i;

	reply->root = NULL;
	reply->content = NULL;
	reply->code = http_code;

	for (i = 0; i < len; i++)
		if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n')
			break;
	if (i == len)
	{
		set_why(why, whylen, "the reply body is empty");
		return OPSMIG_PARSE_EMPTY;
	}

	tok = json_tokener_new();
	if (tok == NULL)
	{
		set_why(why, whylen, "out of memory");
		return OPSMIG_PARSE_NOT_JSON;
	}
	root = json_tokener_parse_ex(tok, body, (int) (len > 0x7fffffff ? 0x7fffffff : len));
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (root == NULL || jerr != json_tokener_success)
	{
		json_object_put(root);
		set_why(why, whylen, jerr == json_tokener_continue ?
				"the reply ends in the middle of a JSON document" :
				"the reply is not valid JSON");
		return OPSMIG_PARSE_NOT_JSON;
	}
	for (; end < len; end++)
		if (body[end] != ' ' && body[end] != '\t' && body[end] != '\r' && body[end] != '\n')
		{
			json_object_put(root);
			set_why(why, whylen, "the reply has data after its JSON document");
			return OPSMIG_PARSE_NOT_JSON;
		}

	reply->root = root;
	reply->content = root;

	/*
	 * Only a 200 can be an envelope: the digest handshake and anything a
	 * proxy says in front of the API arrive as plain HTTP.
	 */
	if (envelope && http_code == 200)
	{
		struct json_object *status,
				   *content;

		if (!json_object_is_type(root, json_type_object) ||
			!json_object_object_get_ex(root, "status", &status) ||
			!json_object_is_type(status, json_type_int) ||
			!json_object_object_get_ex(root, "content", &content))
		{
			set_why(why, whylen, "the reply is not an envelope {\"status\": ..., \"content\": ...}");
			return OPSMIG_PARSE_BAD_SHAPE;
		}
		reply->code = (long) json_object_get_int64(status);
		if (reply->code < 100 || reply->code > 599)
		{
			set_why(why, whylen, "the envelope's status is not an HTTP status code");
			return OPSMIG_PARSE_BAD_SHAPE;
		}
		reply->content = content;	/* NULL for JSON null */
	}
	return OPSMIG_PARSE_OK;
}

void
parse_reply_free(OpsmigReply *reply)
{
	if (reply->root)
		json_object_put(reply->root);
	reply->root = NULL;
	reply->content = NULL;
}

/* A string member, or NULL when absent or not a string. */
static const char *
get_string(struct json_object *obj, const char *key, size_t *len)
{
	struct json_object *v;

	if (obj == NULL || !json_object_is_type(obj, json_type_object) ||
		!json_object_object_get_ex(obj, key, &v) ||
		!json_object_is_type(v, json_type_string))
		return NULL;
	*len = (size_t) json_object_get_string_len(v);
	return json_object_get_string(v);
}

OpsmigParseResult
parse_reply_status(const OpsmigReply *reply, char *status, size_t statuslen,
				   char *why, size_t whylen)
{
	const char *s;
	size_t		len = 0,
				i;

	s = get_string(reply->content, "status", &len);
	if (s == NULL)
	{
		set_why(why, whylen, "the reply has no \"status\" string");
		return OPSMIG_PARSE_BAD_SHAPE;
	}
	if (len == 0 || len > OPSMIG_STATUS_MAX || len >= statuslen)
	{
		set_why(why, whylen, len == 0 ? "the reply's \"status\" is empty" :
				"the reply's \"status\" is longer than "
				PARSE_XSTR(OPSMIG_STATUS_MAX) " bytes");
		return OPSMIG_PARSE_BAD_SHAPE;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
		{
			set_why(why, whylen, "the reply's \"status\" contains control characters");
			return OPSMIG_PARSE_BAD_SHAPE;
		}
	memcpy(status, s, len);
	status[len] = '\0';
	return OPSMIG_PARSE_OK;
}

/*
 * The status in a 2xx reply to a create.  The API's pages answer 201
 * {"status": ...}; its OpenAPI description answers 200 with the source
 * organization's view (createdAt, sourceOrgId, targetOrg, ...) and no
 * status.  Either way the link exists: an object without "status" (or with
 * a null one), or no document at all, gives an empty status ("not said").
 * A "status" that is there must be valid, as in a status reply; a document
 * that is not an object is not a create reply.
 */
OpsmigParseResult
parse_reply_create_status(const OpsmigReply *reply, char *status,
						  size_t statuslen, char *why, size_t whylen)
{
	struct json_object *v = NULL;

	if (statuslen > 0)
		status[0] = '\0';
	if (reply->content == NULL)
		return OPSMIG_PARSE_OK;
	if (!json_object_is_type(reply->content, json_type_object))
	{
		set_why(why, whylen, "the reply is not a JSON object");
		return OPSMIG_PARSE_BAD_SHAPE;
	}
	if (!json_object_object_get_ex(reply->content, "status", &v) || v == NULL)
		return OPSMIG_PARSE_OK;
	return parse_reply_status(reply, status, statuslen, why, whylen);
}

/*
 * Is this the API's own error document for this HTTP code, {"error": code,
 * ...}?  A 404 that is one means "no such thing" (no link); a 404 that is
 * not (an HTML page, an empty body, other JSON) comes from something that
 * is not the API, such as a base URL with the wrong path.
 */
bool
parse_reply_is_api_error(const OpsmigReply *reply, long code)
{
	struct json_object *v;

	return reply->content != NULL &&
		json_object_is_type(reply->content, json_type_object) &&
		json_object_object_get_ex(reply->content, "error", &v) &&
		json_object_is_type(v, json_type_int) &&
		json_object_get_int64(v) == code;
}

/*
 * Walk one page of GET /orgs.  Each organization goes to cb; has_next says
 * whether the page names a next one.
 */
OpsmigParseResult
parse_reply_orgs(const OpsmigReply *reply, parse_org_cb cb, void *arg,
				 int *nresults, bool *has_next, char *why, size_t whylen)
{
	struct json_object *results,
			   *links;
	size_t		n,
				i;

	*nresults = 0;
	*has_next = false;
	if (reply->content == NULL ||
		!json_object_is_type(reply->content, json_type_object) ||
		!json_object_object_get_ex(reply->content, "results", &results) ||
		!json_object_is_type(results, json_type_array))
	{
		set_why(why, whylen, "the organizations page has no \"results\" array");
		return OPSMIG_PARSE_BAD_SHAPE;
	}

	n = json_object_array_length(results);
	for (i = 0; i < n; i++)
	{
		struct json_object *org = json_object_array_get_idx(results, i);
		const char *id,
				   *name;
		size_t		idlen = 0,
					namelen = 0;

		id = get_string(org, "id", &idlen);
		if (id == NULL || idlen != OPSMIG_ORG_ID_LEN || !parse_valid_org_id(id))
		{
			set_why(why, whylen, "an organization in the page has no valid \"id\"");
			return OPSMIG_PARSE_BAD_SHAPE;
		}
		name = get_string(org, "name", &namelen);
		if (name != NULL && strlen(name) != namelen)
			name = NULL;		/* an embedded NUL: not a name we can show */
		cb(id, name, arg);
	}
	*nresults = (int) n;

	if (json_object_object_get_ex(reply->content, "links", &links) &&
		json_object_is_type(links, json_type_array))
	{
		n = json_object_array_length(links);
		for (i = 0; i < n; i++)
		{
			size_t		rlen;
			const char *rel = get_string(json_object_array_get_idx(links, i), "rel", &rlen);

			if (rel && strcmp(rel, "next") == 0)
				*has_next = true;
		}
	}
	return OPSMIG_PARSE_OK;
}

/*
 * Describe an error reply: the API's JSON error document when there is one
 * ({"detail", "error", "errorCode", "reason", ...}), else a printable
 * excerpt of whatever came (an HTML page from a proxy, say).
 */
void
parse_reply_error(const OpsmigReply *reply, const char *body, size_t len,
				  OpsmigApiError *err)
{
	const char *s;
	size_t		slen = 0;

	memset(err, 0, sizeof(*err));
	if (reply && reply->content &&
		json_object_is_type(reply->content, json_type_object))
	{
		if ((s = get_string(reply->content, "errorCode", &slen)) != NULL)
			parse_printable(s, slen, err->error_code, sizeof(err->error_code));
		if ((s = get_string(reply->content, "detail", &slen)) != NULL)
			parse_printable(s, slen, err->detail, sizeof(err->detail));
		if ((s = get_string(reply->content, "reason", &slen)) != NULL)
			parse_printable(s, slen, err->reason, sizeof(err->reason));
		err->json = err->error_code[0] || err->detail[0] || err->reason[0];
	}
	if (!err->json && body != NULL)
		parse_printable(body, len, err->excerpt, sizeof(err->excerpt));
}

/* A number of a JSON array, if it is one within [lo, hi]. */
static bool
get_number(struct json_object *arr, size_t i, double lo, double hi, double *out)
{
	struct json_object *v = json_object_array_get_idx(arr, i);

	if (v == NULL ||
		!(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return false;
	*out = json_object_get_double(v);
	return *out >= lo && *out <= hi;	/* also false for NaN */
}

/*
 * The bucket of a 429 (RATE_LIMITED_TOKEN_BUCKET): the numbers of its
 * "parameters", or valid = false when any is missing or absurd, as in the
 * older RATE_LIMITED reply.
 */
void
parse_reply_ratelimit(const OpsmigReply *reply, OpsmigRateLimitParams *params)
{
	struct json_object *arr;

	memset(params, 0, sizeof(*params));
	if (reply == NULL || reply->content == NULL ||
		!json_object_is_type(reply->content, json_type_object) ||
		!json_object_object_get_ex(reply->content, "parameters", &arr) ||
		!json_object_is_type(arr, json_type_array) ||
		json_object_array_length(arr) < 5)
		return;
	params->valid = get_number(arr, 1, 0, 86400, &params->retry_after) &&
		get_number(arr, 2, 1, 1e9, &params->capacity) &&
		get_number(arr, 3, 1e-9, 1e9, &params->refill) &&
		get_number(arr, 4, 1e-3, 1e8, &params->refill_seconds);
}

/* {"linkToken": "..."}, escaped by json-c whatever the token holds; malloc'd. */
char *
parse_create_body(const char *link_token)
{
	struct json_object *obj = json_object_new_object();
	struct json_object *tok;
	char	   *out = NULL;

	if (obj == NULL)
		return NULL;
	tok = json_object_new_string(link_token);
	if (tok != NULL && json_object_object_add(obj, "linkToken", tok) == 0)
	{
		const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
													   JSON_C_TO_STRING_NOSLASHESCAPE);

		if (s)
			out = strdup(s);
	}
	else
		json_object_put(tok);
	json_object_put(obj);
	return out;
}

/*-------------------------------------------------------------------------
 *
 * api_parse.h
 *		  Parsers for the Ops Manager API's replies, and the one request body
 *		  we send.  Plain C over json-c: no palloc, no ereport, so that the
 *		  fuzz targets in test/fuzz link them without a PostgreSQL backend.
 *
 * Every function reports a problem by its return value and a short,
 * printable explanation in the caller's buffer; api_*.c turn those into
 * ereports.  Nothing here keeps a pointer into the caller's data.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPSMIG_API_PARSE_H
#define OPSMIG_API_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The longest link status we accept (the documented ones are far shorter),
 * and the length of an organization id.  Buffers elsewhere (cache.h, api*.c)
 * are sized from these, plus one for the NUL.
 */
#define OPSMIG_STATUS_MAX		64
#define OPSMIG_ORG_ID_LEN		24

typedef enum OpsmigParseResult
{
	OPSMIG_PARSE_OK = 0,
	OPSMIG_PARSE_EMPTY,			/* no body at all */
	OPSMIG_PARSE_NOT_JSON,		/* the body is not JSON */
	OPSMIG_PARSE_BAD_SHAPE		/* JSON, but not what the API documents */
} OpsmigParseResult;

/* A parsed reply: the whole document and the part that carries the content. */
typedef struct OpsmigReply
{
	struct json_object *root;	/* owned; NULL when the body was empty */
	struct json_object *content;	/* borrowed from root; may be NULL */
	long		code;			/* HTTP code, or the envelope's status */
} OpsmigReply;

/* What an error body says, each field truncated and made printable. */
typedef struct OpsmigApiError
{
	bool		json;			/* the body was a JSON error document */
	char		error_code[64];	/* e.g. NOT_ORG_ADMIN */
	char		detail[512];
	char		reason[64];
	char		excerpt[256];	/* the body's first bytes when not JSON */
} OpsmigApiError;

/*
 * The bucket a 429 describes in its "parameters": [endpoint set, retry-after
 * seconds, capacity, refill rate, refill seconds] (older servers send none).
 */
typedef struct OpsmigRateLimitParams
{
	bool		valid;			/* all four numbers present and sane */
	double		retry_after;	/* seconds */
	double		capacity;		/* tokens */
	double		refill;			/* tokens added ... */
	double		refill_seconds; /* ... every this many seconds */
} OpsmigRateLimitParams;

typedef void (*parse_org_cb) (const char *id, const char *name, void *arg);

extern bool parse_valid_org_id(const char *s);

extern OpsmigParseResult parse_reply(const char *body, size_t len,
									 bool envelope, long http_code,
									 OpsmigReply *reply,
									 char *why, size_t whylen);
extern void parse_reply_free(OpsmigReply *reply);

extern OpsmigParseResult parse_reply_status(const OpsmigReply *reply,
											char *status, size_t statuslen,
											char *why, size_t whylen);
extern OpsmigParseResult parse_reply_create_status(const OpsmigReply *reply,
												   char *status, size_t statuslen,
												   char *why, size_t whylen);
extern bool parse_reply_is_api_error(const OpsmigReply *reply, long code);
extern OpsmigParseResult parse_reply_orgs(const OpsmigReply *reply,
										  parse_org_cb cb, void *arg,
										  int *nresults, bool *has_next,
										  char *why, size_t whylen);
extern void parse_reply_error(const OpsmigReply *reply, const char *body,
							  size_t len, OpsmigApiError *err);

extern void parse_reply_ratelimit(const OpsmigReply *reply,
								  OpsmigRateLimitParams *params);

extern void parse_printable(const char *src, size_t len, char *dst, size_t dstlen);
extern char *parse_create_body(const char *link_token);

#endif							/* OPSMIG_API_PARSE_H */

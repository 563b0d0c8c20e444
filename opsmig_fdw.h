/*-------------------------------------------------------------------------
 *
 * opsmig_fdw.h
 *		  Declarations shared by the files of opsmig_fdw: the server options,
 *		  the column map, the per-user-mapping connection and its counters.
 *
 * The HTTP transport (http.h) and the API client (api.h) have headers of
 * their own; this one only carries what more than one of them needs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPSMIG_FDW_H
#define OPSMIG_FDW_H

#include "foreign/foreign.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"

/* The columns a foreign table may declare, matched by name (or column_name). */
typedef enum OpsmigColumn
{
	OPSMIG_COL_NONE = -1,		/* dropped attribute */
	OPSMIG_COL_ORG_ID = 0,
	OPSMIG_COL_ORG_NAME,
	OPSMIG_COL_STATUS,
	OPSMIG_COL_LINK_TOKEN,
	OPSMIG_NUM_COLUMNS
} OpsmigColumn;

/* Server options, parsed and defaulted (option.c). */
typedef struct OpsmigServerOptions
{
	char	   *base_url;		/* without trailing slash */
	int			connect_timeout_ms;
	int			request_timeout_ms;
	bool		envelope;
	int			max_concurrent_requests;
	int			max_retries;
	int			max_response_bytes;
	bool		ssl_verify;
	char	   *ca_file;		/* NULL: the system's CA store */
	char	   *proxy;			/* NULL: no proxy, whatever the environment says */
	double		request_cost;	/* planner cost of one API request */
	int			cache_ttl_ms;	/* 0: no cache */
	int			max_requests_per_minute;	/* 0: none of our own */
	int			rate_limit_wait_ms; /* -1: only statement_timeout bounds it */
} OpsmigServerOptions;

typedef enum OpsmigRequestKind
{
	OPSMIG_REQ_LIST = 0,
	OPSMIG_REQ_STATUS,
	OPSMIG_REQ_CREATE,
	OPSMIG_REQ_DELETE,
	OPSMIG_NUM_REQ_KINDS
} OpsmigRequestKind;

/* When EXPLAIN ANALYZE shows a counter (opsmig_counters.h); none: always. */
#define OPSMIG_EXPLAIN_TIMING		0x01	/* only with TIMING */
#define OPSMIG_EXPLAIN_CACHE		0x02	/* only with cache_ttl on, or if > 0 */
#define OPSMIG_EXPLAIN_RATE_LIMITED	0x04	/* only if one of this group is > 0 */

/*
 * Per-user-mapping counters, kept for the life of the backend (or until
 * opsmig_fdw_stats_reset()), and the API work of one plan node for EXPLAIN
 * ANALYZE.  The fields come from opsmig_counters.h, in its order: int64
 * counters first, then sums in double from total_ms on, max_ms last.
 * cluster.c sums the struct into shared memory as arrays without naming
 * the fields.
 */
typedef struct OpsmigStats
{
	int64		requests[OPSMIG_NUM_REQ_KINDS];
#define OPSMIG_REQUESTS(kind, column, word, label)
#define OPSMIG_INT64(field, column, http_from, http_to, at, when, label) int64 field;
#define OPSMIG_DOUBLE(field, column, at, when, label) double field;
#include "opsmig_counters.h"
#undef OPSMIG_REQUESTS
#undef OPSMIG_INT64
#undef OPSMIG_DOUBLE
} OpsmigStats;

/* A counter's number: its place in opsmig_counters.h, and in the SQL columns. */
typedef enum OpsmigCounterId
{
#define OPSMIG_REQUESTS(kind, column, word, label) OPSMIG_COUNTER_##column,
#define OPSMIG_INT64(field, column, http_from, http_to, at, when, label) OPSMIG_COUNTER_##column,
#define OPSMIG_DOUBLE(field, column, at, when, label) OPSMIG_COUNTER_##column,
#include "opsmig_counters.h"
#undef OPSMIG_REQUESTS
#undef OPSMIG_INT64
#undef OPSMIG_DOUBLE
	OPSMIG_NUM_COUNTERS
} OpsmigCounterId;

/* What stats.c knows of a counter, from opsmig_counters.h. */
typedef struct OpsmigCounter
{
	const char *column;			/* its column in the SQL views */
	size_t		offset;			/* in OpsmigStats */
	bool		is_double;
	long		http_from;		/* HTTP codes it counts as errors */
	long		http_to;
	int			explain_at;		/* EXPLAIN ANALYZE position; 0: not shown */
	int			explain_when;	/* OPSMIG_EXPLAIN_* */
	const char *explain_label;
	const char *explain_word;	/* requests: in the text line of them all */
} OpsmigCounter;

/* stats.c */
extern const OpsmigCounter opsmig_counters[OPSMIG_NUM_COUNTERS];
extern int64 opsmig_stats_int64(const OpsmigStats *st, int counter);
extern double opsmig_stats_double(const OpsmigStats *st, int counter);
extern bool opsmig_stats_nonzero(const OpsmigStats *st, int counter);
extern Datum opsmig_stats_datum(const OpsmigStats *st, int counter);
/* A column a stats function shows before the counters. */
typedef struct OpsmigStatsKey
{
	const char *column;
	Oid			type;
} OpsmigStatsKey;
extern int *opsmig_stats_columns(TupleDesc desc, const OpsmigStatsKey *keys,
								 int nkeys, bool by_name, Oid fn_oid);
extern void opsmig_stats_count_error(OpsmigStats *st, long http_code);

/* option.c */
extern void opsmig_option_init(void);
extern void opsmig_get_server_options(ForeignServer *server,
									  OpsmigServerOptions *opts);
extern void opsmig_get_user_keys(UserMapping *user, ForeignServer *server,
								 char **public_key, char **private_key);
extern int	opsmig_table_cache_ttl_ms(Oid relid, const OpsmigServerOptions *opts);
extern OpsmigColumn *opsmig_column_map(Relation rel);
extern const char *opsmig_column_name(OpsmigColumn col);

typedef struct HttpSession HttpSession;
typedef struct OpsmigCache OpsmigCache;
typedef struct RateLimiter RateLimiter;

/*
 * One cached connection per user mapping (connection.c), private to it as
 * postgres_fdw's ConnCacheEntry is: the other files ask it for what they
 * need through these accessors.
 */
typedef struct OpsmigConn OpsmigConn;

/* connection.c */

extern OpsmigConn *opsmig_get_connection(UserMapping *user);
extern const OpsmigServerOptions *opsmig_conn_options(const OpsmigConn *conn);
extern const char *opsmig_conn_server_name(const OpsmigConn *conn);
extern const char *opsmig_conn_public_key(const OpsmigConn *conn);
extern HttpSession *opsmig_conn_http(OpsmigConn *conn);
extern RateLimiter *opsmig_conn_limiter(OpsmigConn *conn);
extern OpsmigStats *opsmig_conn_stats(OpsmigConn *conn);
extern void opsmig_conn_count_elapsed(OpsmigConn *conn, double ms);
extern OpsmigCache **opsmig_conn_cache(OpsmigConn *conn, MemoryContext *cxt);
extern void opsmig_conn_shared_cache_key(OpsmigConn *conn, uint8 *digest);
extern void opsmig_note_remote_change(const char *what);
extern void opsmig_forget_org(const char *org_id);

#endif							/* OPSMIG_FDW_H */

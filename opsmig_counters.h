/*-------------------------------------------------------------------------
 *
 * opsmig_counters.h
 *		  The one list of opsmig_fdw's counters of API work.
 *
 * Everything that names the counters is made from this list: the fields of
 * OpsmigStats (opsmig_fdw.h), the columns that opsmig_fdw_stats() and
 * opsmig_fdw_cluster_stats() fill, the properties of EXPLAIN ANALYZE and
 * which HTTP code each error counter counts (stats.c).  As kwlist.h in
 * PostgreSQL, it has no include guard: the includer defines the three
 * macros, includes it, and undefines them.
 *
 * OPSMIG_REQUESTS(kind, column, word, label)
 *		requests[kind] of OpsmigStats.  EXPLAIN shows them first; in text as
 *		one line "API Requests: word=N ...", in the other formats one
 *		property a kind, named label.
 * OPSMIG_INT64(field, column, http_from, http_to, at, when, label)
 *		An int64 field.  An error counter counts the HTTP codes from
 *		http_from to http_to (0: no HTTP answer), the first in this list
 *		that matches; -1, -1 for the others.
 * OPSMIG_DOUBLE(field, column, at, when, label)
 *		A double field, in ms.
 *
 * column is the SQL name in both views.  EXPLAIN ANALYZE shows a counter
 * at position "at" (0: not shown) under the conditions "when" (a set of
 * OPSMIG_EXPLAIN_* flags, opsmig_fdw.h), as label.
 *
 * The order is that of the struct and of the SQL functions' columns: int64
 * counters, then sums in double from total_ms on, max_ms last (cluster.c
 * sums them as arrays; stats.c checks the order).  A new counter changes
 * the column count of both SQL functions: it needs a new extension version
 * (static assertions in connection.c and cluster.c say so).
 *
 *-------------------------------------------------------------------------
 */

OPSMIG_REQUESTS(OPSMIG_REQ_LIST, list_requests, "list", "API List Requests")
OPSMIG_REQUESTS(OPSMIG_REQ_STATUS, status_requests, "status", "API Status Requests")
OPSMIG_REQUESTS(OPSMIG_REQ_CREATE, create_requests, "create", "API Create Requests")
OPSMIG_REQUESTS(OPSMIG_REQ_DELETE, delete_requests, "delete", "API Delete Requests")
OPSMIG_INT64(errors_401, errors_401, 401, 401, 0, 0, NULL)
OPSMIG_INT64(errors_403, errors_403, 403, 403, 0, 0, NULL)
OPSMIG_INT64(errors_404, errors_404, 404, 404, 0, 0, NULL)
OPSMIG_INT64(errors_409, errors_409, 409, 409, 0, 0, NULL)
OPSMIG_INT64(errors_429, errors_429, 429, 429, 8, OPSMIG_EXPLAIN_RATE_LIMITED, "Rate Limited (429)")
OPSMIG_INT64(errors_4xx_other, errors_4xx_other, 400, 499, 0, 0, NULL)
/* libcurl reads a status code as three digits */
OPSMIG_INT64(errors_5xx, errors_5xx, 500, 999, 0, 0, NULL)
/* no HTTP answer: refused, reset, timeout */
OPSMIG_INT64(errors_transport, errors_transport, 0, 0, 0, 0, NULL)
OPSMIG_INT64(retries, retries, -1, -1, 2, 0, "API Retries")
/* digest 401 round trips paid */
OPSMIG_INT64(challenges, digest_challenges, -1, -1, 3, 0, "Digest Challenges")
/* TCP connections opened */
OPSMIG_INT64(connections, connections_opened, -1, -1, 5, OPSMIG_EXPLAIN_TIMING, "Connections Opened")
OPSMIG_INT64(bytes_received, bytes_received, -1, -1, 6, OPSMIG_EXPLAIN_TIMING, "Bytes Received")
/* organizations answered from the cache */
OPSMIG_INT64(cache_hits, cache_hits, -1, -1, 4, OPSMIG_EXPLAIN_CACHE, "Cache Hits")
/* times the rate limit held requests back */
OPSMIG_INT64(rate_limit_waits, rate_limit_waits, -1, -1, 0, 0, NULL)
/* time spent in requests */
OPSMIG_DOUBLE(total_ms, total_ms, 7, OPSMIG_EXPLAIN_TIMING, "API Time")
/* time the rate limit held them back */
OPSMIG_DOUBLE(rate_limit_wait_ms, rate_limit_wait_ms, 9, OPSMIG_EXPLAIN_TIMING | OPSMIG_EXPLAIN_RATE_LIMITED, "Rate Limit Wait")
/* the slowest request: the cluster keeps the largest, not the sum */
OPSMIG_DOUBLE(max_ms, max_ms, 0, 0, NULL)

/*-------------------------------------------------------------------------
 *
 * api.h
 *		  The Ops Manager / Cloud Manager live-migration link API, as the FDW
 *		  callbacks see it: scan links, create one, delete some.
 *
 * The api_*.c files are the only ones that know the API's URLs, JSON
 * shapes and HTTP codes; api_error.c alone turns a reply or a transport
 * failure into an ereport with a SQLSTATE.  Their shared internals are in
 * api_int.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPSMIG_API_H
#define OPSMIG_API_H

#include "opsmig_fdw.h"

/* One row of a scan. */
typedef struct OpsmigLink
{
	char	   *org_id;
	char	   *org_name;		/* NULL unless the scan listed organizations */
	char	   *status;
} OpsmigLink;

typedef struct OpsmigScan OpsmigScan;

extern void api_check_org_id(const char *org_id, const char *what);

/*
 * A scan lives in the caller's current memory context, which must be one
 * the caller deletes when the scan ends (or the statement fails): that
 * releases every transfer still in flight.  The scan's requests and cache
 * hits are counted in the connection's stats and, when work is given, in
 * *work too (a scan's own share, for EXPLAIN ANALYZE).
 */
extern OpsmigScan *api_scan_begin(OpsmigConn *conn, List *org_ids,
								  bool list_all, bool need_names,
								  int cache_ttl_ms, OpsmigStats *work);
extern bool api_scan_next(OpsmigScan *scan, OpsmigLink *link);

extern void api_create_links(OpsmigConn *conn, int n, char **org_ids,
							 char **tokens, char **statuses,
							 OpsmigStats *work);
extern int	api_delete_links(OpsmigConn *conn, List *org_ids,
							 OpsmigStats *work);

#endif							/* OPSMIG_API_H */

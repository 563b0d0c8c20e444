/*-------------------------------------------------------------------------
 *
 * cache.h
 *		  The cache_ttl cache: recent answers of the API kept per user
 *		  mapping, so dashboards that poll the table do not poll the API;
 *		  in shared memory when opsmig_fdw is preloaded (shared_cache.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPSMIG_CACHE_H
#define OPSMIG_CACHE_H

#include "api_parse.h"
#include "opsmig_fdw.h"

/* One organization of a cached listing. */
typedef struct CachedOrg
{
	char		org_id[OPSMIG_ORG_ID_LEN + 1];
	char	   *name;			/* UTF-8, as the API sent it; may be NULL */
} CachedOrg;

extern bool cache_get_status(OpsmigConn *conn, const char *org_id, int ttl_ms,
							 bool *linked, char **status);
extern uint64 cache_generation(OpsmigConn *conn);
extern void cache_put_status(OpsmigConn *conn, const char *org_id,
							 const char *status, uint64 gen);
extern void cache_forget(OpsmigConn *conn, const char *org_id);
extern CachedOrg *cache_get_listing(OpsmigConn *conn, int ttl_ms, int *norgs);
extern void cache_put_listing(OpsmigConn *conn, const CachedOrg *orgs, int norgs);

/*
 * shared_cache.c: the same answers in shared memory, when opsmig_fdw is
 * preloaded; cache.c uses it instead of its own when enabled.  Answers
 * come back palloc'd.
 */
#define SHARED_CACHE_KEY_LEN	32	/* a SHA-256 digest */

extern bool shared_cache_enabled(void);
extern void shared_cache_key(Oid serverid, const OpsmigServerOptions *opts,
							 const char *public_key, const char *private_key,
							 uint8 *digest);
extern bool shared_cache_get_status(const uint8 *digest, const char *org_id,
									int ttl_ms, bool *linked, char **status);
extern void shared_cache_put_status(const uint8 *digest, const char *org_id,
									const char *status);
extern void shared_cache_forget(const char *org_id);
extern CachedOrg *shared_cache_get_listing(const uint8 *digest, int ttl_ms,
										   int *norgs);
extern void shared_cache_put_listing(const uint8 *digest, const CachedOrg *orgs,
									 int norgs);

#endif							/* OPSMIG_CACHE_H */

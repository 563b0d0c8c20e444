/*-------------------------------------------------------------------------
 *
 * cache.c
 *		  The cache_ttl cache of opsmig_fdw: each user mapping's recent link
 *		  statuses (including "no link") and its last organization listing,
 *		  with the time each was fetched.
 *
 * Off by default (cache_ttl = 0).  Within the TTL a repeated scan in the same
 * backend is answered from memory with no request at all; INSERT and DELETE
 * through the FDW forget the organization they changed, so a backend always
 * sees its own changes.  Other backends' changes, and changes made outside
 * PostgreSQL, show after at most cache_ttl seconds: that is the trade.
 *
 * Everything lives in a context under the connection's, so invalidating the
 * connection (ALTER SERVER, ALTER USER MAPPING) drops the cache with it.
 *
 * A scan may still be reading answers asked before a change this backend
 * made (a cursor left open across a DELETE): such an answer may predate the
 * change, so it must not go back into the cache.  Each scan takes a
 * generation number when it begins; forgetting an organization stamps it
 * with a newer one, and an answer from an older scan is then not stored.
 * The numbers run backend-wide, so they also outlive a dropped cache.
 *
 * Statuses are kept in the server encoding, as the scan returns them, and
 * names in the API's UTF-8 (a scan converts a name only for a row that
 * shows it), so a scan answered from the cache converts nothing twice.
 *
 * When opsmig_fdw is preloaded, the answers go to shared memory instead
 * (shared_cache.c), under a key computed once per connection here; every
 * function below decides which of the two it uses, so callers do not care.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cache.h"

typedef struct CachedStatus
{
	char		org_id[OPSMIG_ORG_ID_LEN + 1];	/* hash key */
	bool		linked;
	char		status[OPSMIG_STATUS_MAX + 1];
	TimestampTz fetched_at;		/* 0: forgotten */
	uint64		forgotten_gen;	/* generation that last forgot it */
} CachedStatus;

struct OpsmigCache
{
	MemoryContext cxt;
	HTAB	   *statuses;
	MemoryContext listing_cxt;	/* reset at each new listing */
	CachedOrg  *listing;
	int			nlisting;
	TimestampTz listing_at;
	uint64		created_gen;	/* answers asked before this are not stored */
	bool		shared_key_set;
	uint8		shared_key[SHARED_CACHE_KEY_LEN];	/* shared_cache.c's key */
};

/* The last generation handed out, in this backend. */
static uint64 cache_generation_counter = 0;

/* The connection's cache if it has one yet, or NULL. */
static OpsmigCache *
cache_if_any(OpsmigConn *conn)
{
	MemoryContext conn_cxt;

	return *opsmig_conn_cache(conn, &conn_cxt);
}

/* The connection's cache, made on first use in the connection's context. */
static OpsmigCache *
cache_of(OpsmigConn *conn)
{
	MemoryContext conn_cxt;
	OpsmigCache **slot = opsmig_conn_cache(conn, &conn_cxt);
	OpsmigCache *c = *slot;
	HASHCTL		ctl;

	if (c)
		return c;
	c = MemoryContextAllocZero(conn_cxt, sizeof(OpsmigCache));
	c->cxt = AllocSetContextCreate(conn_cxt, "opsmig_fdw cache", ALLOCSET_DEFAULT_SIZES);
	c->listing_cxt = AllocSetContextCreate(c->cxt, "opsmig_fdw cached listing",
										   ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(((CachedStatus *) NULL)->org_id);
	ctl.entrysize = sizeof(CachedStatus);
	ctl.hcxt = c->cxt;
	c->statuses = hash_create("opsmig_fdw status cache", 256, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	c->created_gen = ++cache_generation_counter;
	*slot = c;
	return c;
}

/* The shared cache's key of this connection, computed once. */
static const uint8 *
shared_key(OpsmigConn *conn)
{
	OpsmigCache *c = cache_of(conn);

	if (!c->shared_key_set)
	{
		opsmig_conn_shared_cache_key(conn, c->shared_key);
		c->shared_key_set = true;
	}
	return c->shared_key;
}

static bool
fresh(TimestampTz at, int ttl_ms)
{
	return ttl_ms > 0 && at != 0 &&
		!TimestampDifferenceExceeds(at, GetCurrentTimestamp(), ttl_ms);
}

/*
 * A fresh cached status: *linked false means the API said "no link".
 * *status points into the cache; copy it before the next cache call.
 */
bool
cache_get_status(OpsmigConn *conn, const char *org_id, int ttl_ms,
				 bool *linked, char **status)
{
	OpsmigCache *c;
	CachedStatus *e;

	if (ttl_ms <= 0)
		return false;
	if (shared_cache_enabled())
	{
		if (!shared_cache_get_status(shared_key(conn), org_id, ttl_ms, linked, status))
			return false;
		opsmig_conn_stats(conn)->cache_hits++;
		return true;
	}
	if ((c = cache_if_any(conn)) == NULL)
		return false;
	e = hash_search(c->statuses, org_id, HASH_FIND, NULL);
	if (e == NULL || !fresh(e->fetched_at, ttl_ms))
		return false;
	*linked = e->linked;
	*status = e->status;
	opsmig_conn_stats(conn)->cache_hits++;
	return true;
}

/*
 * The generation a caching scan takes when it begins (see the header
 * comment); the cache it will write to exists from now on.
 */
uint64
cache_generation(OpsmigConn *conn)
{
	(void) cache_of(conn);
	return ++cache_generation_counter;
}

/*
 * Remember an answer of a scan that began at generation gen; status NULL
 * means "no link".  Not stored when this backend changed the organization
 * (or dropped the cache) since then: the answer may predate the change.
 */
void
cache_put_status(OpsmigConn *conn, const char *org_id, const char *status,
				 uint64 gen)
{
	OpsmigCache *c;
	CachedStatus *e;
	bool		found;

	if (shared_cache_enabled())
	{
		/* The shared cache has its own guard against stale answers. */
		shared_cache_put_status(shared_key(conn), org_id, status);
		return;
	}
	c = cache_of(conn);
	if (gen < c->created_gen)
		return;
	e = hash_search(c->statuses, org_id, HASH_ENTER, &found);
	if (!found)
		e->forgotten_gen = 0;
	else if (gen < e->forgotten_gen)
		return;
	e->linked = (status != NULL);
	strlcpy(e->status, status ? status : "", sizeof(e->status));
	e->fetched_at = GetCurrentTimestamp();
}

/* This backend changed the organization: drop its answer, keep its stamp. */
void
cache_forget(OpsmigConn *conn, const char *org_id)
{
	OpsmigCache *c;
	CachedStatus *e;

	if (shared_cache_enabled())
	{
		shared_cache_forget(org_id);
		return;
	}
	if ((c = cache_if_any(conn)) == NULL)
		return;					/* nothing cached, nor any older scan to fear */
	e = hash_search(c->statuses, org_id, HASH_ENTER, NULL);
	e->linked = false;
	e->status[0] = '\0';
	e->fetched_at = 0;
	e->forgotten_gen = ++cache_generation_counter;
}

/* A fresh cached listing, or NULL. */
CachedOrg *
cache_get_listing(OpsmigConn *conn, int ttl_ms, int *norgs)
{
	OpsmigCache *c;

	if (ttl_ms > 0 && shared_cache_enabled())
		return shared_cache_get_listing(shared_key(conn), ttl_ms, norgs);
	c = cache_if_any(conn);
	if (ttl_ms <= 0 || c == NULL || c->listing == NULL ||
		!fresh(c->listing_at, ttl_ms))
		return NULL;
	*norgs = c->nlisting;
	return c->listing;
}

void
cache_put_listing(OpsmigConn *conn, const CachedOrg *orgs, int norgs)
{
	OpsmigCache *c = cache_of(conn);
	int			i;

	if (shared_cache_enabled())
	{
		shared_cache_put_listing(shared_key(conn), orgs, norgs);
		return;
	}
	MemoryContextReset(c->listing_cxt);
	c->listing = MemoryContextAlloc(c->listing_cxt, sizeof(CachedOrg) * Max(norgs, 1));
	for (i = 0; i < norgs; i++)
	{
		strlcpy(c->listing[i].org_id, orgs[i].org_id, sizeof(c->listing[i].org_id));
		c->listing[i].name = orgs[i].name ?
			MemoryContextStrdup(c->listing_cxt, orgs[i].name) : NULL;
	}
	c->nlisting = norgs;
	c->listing_at = GetCurrentTimestamp();
}

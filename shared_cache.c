/*-------------------------------------------------------------------------
 *
 * shared_cache.c
 *		  The cache_ttl cache in shared memory, when opsmig_fdw is preloaded:
 *		  any session within the TTL reuses the answers another one fetched.
 *		  cache.c decides whether this one or its backend-local cache is used.
 *
 * What may be shared.  An answer is keyed by a SHA-256 digest of the
 * database, server OID, base_url, public key and private key that fetched it,
 * and of how it travelled (ssl_verify, ca_file, proxy, envelope), so it is
 * only ever given to a connection that would have been given the same answer
 * by the API over the same path: another key (even one that knows the public
 * key but not the private one), another server or another database never
 * sees it, and changing any of these makes a new digest.  The private
 * key is never stored, only mixed into the digest.
 *
 * Size.  opsmig_fdw.shared_cache_size entries, fixed at server start: one per
 * organization status, and one per organization plus one of a cached
 * listing.  When full, the least recently used tenth is evicted at once (as
 * pg_stat_statements does), so an eviction's cost is paid rarely.  A listing
 * that would fill half the cache, or an organization name that does not fit
 * an entry, is not cached.
 *
 * Invalidation.  INSERT and DELETE through the FDW forget the organization's
 * status under every key, before the request and again after it.  An answer
 * asked before a forget must not be stored after it (it may predate the
 * change): every forget bumps a generation, each transaction notes the
 * generation when it first reads the cache, which is before any request it
 * sends, and a put is refused when the generation has moved since.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "cache.h"
#include "cluster.h"

/* An organization's name (or a status) longer than this is not cached. */
#define SHARED_TEXT_LEN		256

typedef enum SharedCacheKind
{
	SC_STATUS,					/* an organization's link status */
	SC_LISTING,					/* a listing: its size and version */
	SC_MEMBER					/* one organization of a listing version */
} SharedCacheKind;

typedef struct SharedCacheKey
{
	uint8		digest[SHARED_CACHE_KEY_LEN];
	int32		kind;			/* SharedCacheKind */
	uint32		version;		/* SC_MEMBER: the listing's version */
	int32		index;			/* SC_MEMBER: place in the listing */
	char		org_id[sizeof(((CachedOrg *) NULL)->org_id)];	/* SC_STATUS */
} SharedCacheKey;

typedef struct SharedCacheEntry
{
	SharedCacheKey key;
	TimestampTz fetched_at;
	pg_atomic_uint64 last_used; /* LRU stamp, bumped by readers too */
	int32		count;			/* SC_LISTING: organizations */
	uint32		version;		/* SC_LISTING: version of its members */
	bool		linked;			/* SC_STATUS: false = "no link" */
	bool		has_text;		/* SC_MEMBER: false = no name */
	char		member_org_id[sizeof(((CachedOrg *) NULL)->org_id)];	/* SC_MEMBER */
	char		text[SHARED_TEXT_LEN];	/* status, or organization name */
} SharedCacheEntry;

typedef struct SharedCacheState
{
	LWLock	   *lock;
	pg_atomic_uint64 clock;		/* LRU stamps */
	pg_atomic_uint64 forget_gen;	/* bumped by every forget */
	uint32		listing_version;	/* under the lock */
} SharedCacheState;

static int	shared_cache_size = 4096;
static SharedCacheState *sc = NULL;
static HTAB *sc_hash = NULL;

/* The generation this transaction first saw (see the header comment). */
static uint64 xact_gen;
static bool xact_gen_valid = false;
static bool xact_callback_set = false;

/* opsmig_fdw.shared_cache_size, defined only when preloading (PGC_POSTMASTER). */
void
shared_cache_define_guc(void)
{
	DefineCustomIntVariable("opsmig_fdw.shared_cache_size",
							"Entries of the shared cache_ttl cache (with shared_preload_libraries).",
							"One entry per organization status or listed organization, about 400 bytes each; 0 turns the shared cache off.",
							&shared_cache_size,
							4096, 0, 1000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
}

/* The shared memory this file asks for (cluster.c's request hook). */
Size
shared_cache_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(SharedCacheState)),
					hash_estimate_size(Max(shared_cache_size, 1),
									   sizeof(SharedCacheEntry)));
}

/* Set up the cache, once, in the postmaster (cluster.c's startup hook). */
void
shared_cache_shmem_init(LWLock *lock)
{
	bool		found;
	HASHCTL		info;

	sc = ShmemInitStruct("opsmig_fdw shared cache state", sizeof(SharedCacheState), &found);
	if (!found)
	{
		sc->lock = lock;
		pg_atomic_init_u64(&sc->clock, 0);
		pg_atomic_init_u64(&sc->forget_gen, 0);
		sc->listing_version = 0;
	}
	info.keysize = sizeof(SharedCacheKey);
	info.entrysize = sizeof(SharedCacheEntry);
	sc_hash = ShmemInitHash("opsmig_fdw shared cache", Max(shared_cache_size, 1),
							Max(shared_cache_size, 1), &info, HASH_ELEM | HASH_BLOBS);
}

/* Preloaded and not turned off: cache.c then uses this cache, not its own. */
bool
shared_cache_enabled(void)
{
	return sc != NULL && shared_cache_size > 0;
}

/*
 * The digest that names what this connection may see.  How the answers
 * reached us is part of it too (certificate checks, CA, proxy, envelope): an
 * answer read with ssl_verify off must not be served once it is on, as
 * without preloading, where any ALTER SERVER drops the cache.
 */
void
shared_cache_key(Oid serverid, const OpsmigServerOptions *o,
				 const char *public_key, const char *private_key,
				 uint8 *digest)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	Oid			ids[2] = {MyDatabaseId, serverid};
	bool		flags[4] = {o->ssl_verify, o->envelope, o->ca_file != NULL, o->proxy != NULL};
	const char *parts[5] = {o->base_url, public_key, private_key,
		o->ca_file ? o->ca_file : "", o->proxy ? o->proxy : ""};
	int			i;
	bool		ok;

	ok = pg_cryptohash_init(ctx) == 0 &&
		pg_cryptohash_update(ctx, (const uint8 *) ids, sizeof(ids)) == 0 &&
		pg_cryptohash_update(ctx, (const uint8 *) flags, sizeof(flags)) == 0;
	/* With each terminating NUL, so no two splits of a string collide. */
	for (i = 0; ok && i < lengthof(parts); i++)
		ok = pg_cryptohash_update(ctx, (const uint8 *) parts[i], strlen(parts[i]) + 1) == 0;
	ok = ok && pg_cryptohash_final(ctx, digest, SHARED_CACHE_KEY_LEN) == 0;
	if (!ok)
	{
		const char *why = pstrdup(pg_cryptohash_error(ctx));

		pg_cryptohash_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not compute the shared cache key"),
				 errdetail_internal("SHA-256: %s", why)));
	}
	pg_cryptohash_free(ctx);
}

static void
shared_cache_xact_callback(XactEvent event, void *arg)
{
	xact_gen_valid = false;
}

/* Note the generation before this transaction's first request. */
static void
note_generation(void)
{
	if (xact_gen_valid)
		return;
	if (!xact_callback_set)
	{
		RegisterXactCallback(shared_cache_xact_callback, NULL);
		xact_callback_set = true;
	}
	xact_gen = pg_atomic_read_u64(&sc->forget_gen);
	xact_gen_valid = true;
}

static void
make_key(SharedCacheKey *key, const uint8 *digest, SharedCacheKind kind,
		 uint32 version, int32 index, const char *org_id)
{
	memset(key, 0, sizeof(SharedCacheKey));	/* the padding is hashed too */
	memcpy(key->digest, digest, SHARED_CACHE_KEY_LEN);
	key->kind = kind;
	key->version = version;
	key->index = index;
	if (org_id)
		strlcpy(key->org_id, org_id, sizeof(key->org_id));
}

static bool
fresh(TimestampTz at, int ttl_ms)
{
	return ttl_ms > 0 &&
		!TimestampDifferenceExceeds(at, GetCurrentTimestamp(), ttl_ms);
}

static void
touch(SharedCacheEntry *e)
{
	pg_atomic_write_u64(&e->last_used, pg_atomic_add_fetch_u64(&sc->clock, 1));
}

static int
cmp_last_used(const void *a, const void *b)
{
	uint64		x = pg_atomic_read_u64(&(*(SharedCacheEntry *const *) a)->last_used);
	uint64		y = pg_atomic_read_u64(&(*(SharedCacheEntry *const *) b)->last_used);

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Make room for "need" new entries.  Lock held exclusively. */
static void
make_room(int need)
{
	long		n = hash_get_num_entries(sc_hash);
	SharedCacheEntry **all;
	HASH_SEQ_STATUS scan;
	SharedCacheEntry *e;
	long		i = 0;
	long		evict;

	if (n + need <= shared_cache_size)
		return;
	evict = Max(n + need - shared_cache_size, shared_cache_size / 10);
	all = palloc(sizeof(SharedCacheEntry *) * n);
	hash_seq_init(&scan, sc_hash);
	while ((e = hash_seq_search(&scan)) != NULL)
		all[i++] = e;
	qsort(all, i, sizeof(SharedCacheEntry *), cmp_last_used);
	for (n = 0; n < Min(evict, i); n++)
		hash_search(sc_hash, &all[n]->key, HASH_REMOVE, NULL);
	pfree(all);
}

/* A fresh status, as cache_get_status() gives it; *status is palloc'd. */
bool
shared_cache_get_status(const uint8 *digest, const char *org_id, int ttl_ms,
						bool *linked, char **status)
{
	SharedCacheKey key;
	SharedCacheEntry *e;
	char		copy[SHARED_TEXT_LEN];
	bool		hit = false;

	note_generation();
	make_key(&key, digest, SC_STATUS, 0, 0, org_id);
	LWLockAcquire(sc->lock, LW_SHARED);
	e = hash_search(sc_hash, &key, HASH_FIND, NULL);
	if (e != NULL && fresh(e->fetched_at, ttl_ms))
	{
		touch(e);
		*linked = e->linked;
		strlcpy(copy, e->text, sizeof(copy));
		hit = true;
	}
	LWLockRelease(sc->lock);
	if (hit)
		*status = pstrdup(copy);
	return hit;
}

/*
 * Remember an answer (status NULL: "no link"), unless an organization was
 * forgotten since this transaction first read the cache.
 */
void
shared_cache_put_status(const uint8 *digest, const char *org_id, const char *status)
{
	SharedCacheKey key;
	SharedCacheEntry *e;
	bool		found;

	if (!xact_gen_valid || (status && strlen(status) >= SHARED_TEXT_LEN))
		return;
	make_key(&key, digest, SC_STATUS, 0, 0, org_id);
	LWLockAcquire(sc->lock, LW_EXCLUSIVE);
	if (pg_atomic_read_u64(&sc->forget_gen) == xact_gen)
	{
		e = hash_search(sc_hash, &key, HASH_FIND, &found);
		if (e == NULL)
		{
			make_room(1);
			e = hash_search(sc_hash, &key, HASH_ENTER_NULL, &found);
		}
		if (e != NULL)
		{
			if (!found)
				pg_atomic_init_u64(&e->last_used, 0);
			touch(e);
			e->fetched_at = GetCurrentTimestamp();
			e->linked = (status != NULL);
			strlcpy(e->text, status ? status : "", sizeof(e->text));
		}
	}
	LWLockRelease(sc->lock);
}

/* This cluster changed the organization's link: forget it under every key. */
void
shared_cache_forget(const char *org_id)
{
	HASH_SEQ_STATUS scan;
	SharedCacheEntry *e;

	LWLockAcquire(sc->lock, LW_EXCLUSIVE);
	pg_atomic_fetch_add_u64(&sc->forget_gen, 1);
	hash_seq_init(&scan, sc_hash);
	while ((e = hash_seq_search(&scan)) != NULL)
	{
		if (e->key.kind == SC_STATUS && strcmp(e->key.org_id, org_id) == 0)
			hash_search(sc_hash, &e->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(sc->lock);
}

/* A fresh listing, palloc'd, or NULL. */
CachedOrg *
shared_cache_get_listing(const uint8 *digest, int ttl_ms, int *norgs)
{
	SharedCacheKey key;
	SharedCacheEntry *head;
	CachedOrg  *orgs = NULL;
	int			n = 0;
	int			i = 0;

	note_generation();
	make_key(&key, digest, SC_LISTING, 0, 0, NULL);
	LWLockAcquire(sc->lock, LW_SHARED);
	head = hash_search(sc_hash, &key, HASH_FIND, NULL);
	if (head != NULL && fresh(head->fetched_at, ttl_ms))
	{
		n = head->count;
		orgs = palloc(sizeof(CachedOrg) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			SharedCacheEntry *m;

			make_key(&key, digest, SC_MEMBER, head->version, i, NULL);
			m = hash_search(sc_hash, &key, HASH_FIND, NULL);
			if (m == NULL)
				break;			/* evicted: the listing is incomplete */
			touch(m);
			memcpy(orgs[i].org_id, m->member_org_id, sizeof(orgs[i].org_id));
			orgs[i].name = m->has_text ? pstrdup(m->text) : NULL;
		}
		if (i == n)
			touch(head);
	}
	LWLockRelease(sc->lock);
	if (orgs == NULL || i < n)
		return NULL;
	*norgs = n;
	return orgs;
}

/* Remember a listing, replacing the one of the same key. */
void
shared_cache_put_listing(const uint8 *digest, const CachedOrg *orgs, int norgs)
{
	SharedCacheKey key;
	SharedCacheEntry *head;
	SharedCacheEntry *e;
	bool		found;
	uint32		version;
	int			i;

	if (norgs + 1 > shared_cache_size / 2)
		return;
	for (i = 0; i < norgs; i++)
		if (orgs[i].name && strlen(orgs[i].name) >= SHARED_TEXT_LEN)
			return;

	LWLockAcquire(sc->lock, LW_EXCLUSIVE);
	/* Drop the listing this one replaces, then make room for the new one. */
	make_key(&key, digest, SC_LISTING, 0, 0, NULL);
	head = hash_search(sc_hash, &key, HASH_FIND, NULL);
	if (head != NULL)
	{
		uint32		old = head->version;
		int			count = head->count;

		hash_search(sc_hash, &key, HASH_REMOVE, NULL);
		for (i = 0; i < count; i++)
		{
			make_key(&key, digest, SC_MEMBER, old, i, NULL);
			hash_search(sc_hash, &key, HASH_REMOVE, NULL);
		}
	}
	make_room(norgs + 1);
	version = ++sc->listing_version;
	for (i = 0; i < norgs; i++)
	{
		make_key(&key, digest, SC_MEMBER, version, i, NULL);
		e = hash_search(sc_hash, &key, HASH_ENTER_NULL, &found);
		if (e == NULL)
			break;
		memcpy(e->member_org_id, orgs[i].org_id, sizeof(e->member_org_id));
		pg_atomic_init_u64(&e->last_used, 0);
		touch(e);
		e->has_text = (orgs[i].name != NULL);
		strlcpy(e->text, orgs[i].name ? orgs[i].name : "", sizeof(e->text));
	}
	if (i == norgs)
	{
		make_key(&key, digest, SC_LISTING, 0, 0, NULL);
		head = hash_search(sc_hash, &key, HASH_ENTER_NULL, &found);
		if (head != NULL)
		{
			pg_atomic_init_u64(&head->last_used, 0);
			touch(head);
			head->fetched_at = GetCurrentTimestamp();
			head->count = norgs;
			head->version = version;
		}
	}
	LWLockRelease(sc->lock);
}

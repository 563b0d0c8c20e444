/*-------------------------------------------------------------------------
 *
 * stats.c
 *		  The counters of API work, as opsmig_counters.h lists them: where
 *		  each lives in OpsmigStats, its SQL column, how EXPLAIN ANALYZE
 *		  shows it, and which HTTP codes it counts as errors.
 *
 * The two stats functions (connection.c, cluster.c) and EXPLAIN
 * (opsmig_fdw.c) walk opsmig_counters[] instead of naming fields, so a
 * counter is added in one place.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "opsmig_fdw.h"

const OpsmigCounter opsmig_counters[OPSMIG_NUM_COUNTERS] = {
#define OPSMIG_REQUESTS(kind, column, word, label) \
	{#column, offsetof(OpsmigStats, requests) + (kind) * sizeof(int64), false, -1, -1, 1, 0, label, word},
#define OPSMIG_INT64(field, column, http_from, http_to, at, when, label) \
	{#column, offsetof(OpsmigStats, field), false, http_from, http_to, at, when, label, NULL},
#define OPSMIG_DOUBLE(field, column, at, when, label) \
	{#column, offsetof(OpsmigStats, field), true, -1, -1, at, when, label, NULL},
#include "opsmig_counters.h"
#undef OPSMIG_REQUESTS
#undef OPSMIG_INT64
#undef OPSMIG_DOUBLE
};

/*
 * The list's order is the struct's (so the SQL columns, filled in list
 * order, are in the order cluster.c sums them), the requests come first in
 * kind order, and no int64 stands among the doubles.
 */
#define OPSMIG_REQUESTS(kind, column, word, label) \
	StaticAssertDecl((int) OPSMIG_COUNTER_##column == (int) (kind), \
					 "requests must come first in opsmig_counters.h, in kind order");
#define OPSMIG_INT64(field, column, http_from, http_to, at, when, label) \
	StaticAssertDecl(offsetof(OpsmigStats, field) == OPSMIG_COUNTER_##column * sizeof(int64) && \
					 offsetof(OpsmigStats, field) < offsetof(OpsmigStats, total_ms), \
					 "int64 counter " #field " out of place in opsmig_counters.h");
#define OPSMIG_DOUBLE(field, column, at, when, label) \
	StaticAssertDecl(offsetof(OpsmigStats, field) == OPSMIG_COUNTER_##column * sizeof(double) && \
					 offsetof(OpsmigStats, field) >= offsetof(OpsmigStats, total_ms), \
					 "double counter " #field " out of place in opsmig_counters.h");
#include "opsmig_counters.h"
#undef OPSMIG_REQUESTS
#undef OPSMIG_INT64
#undef OPSMIG_DOUBLE
StaticAssertDecl(sizeof(OpsmigStats) == OPSMIG_NUM_COUNTERS * sizeof(int64),
				 "OpsmigStats must hold the counters of opsmig_counters.h and nothing else");

static const void *
counter_address(const OpsmigStats *st, int counter)
{
	return (const char *) st + opsmig_counters[counter].offset;
}

int64
opsmig_stats_int64(const OpsmigStats *st, int counter)
{
	Assert(!opsmig_counters[counter].is_double);
	return *(const int64 *) counter_address(st, counter);
}

double
opsmig_stats_double(const OpsmigStats *st, int counter)
{
	Assert(opsmig_counters[counter].is_double);
	return *(const double *) counter_address(st, counter);
}

bool
opsmig_stats_nonzero(const OpsmigStats *st, int counter)
{
	return opsmig_counters[counter].is_double ?
		opsmig_stats_double(st, counter) > 0 :
		opsmig_stats_int64(st, counter) > 0;
}

/* A counter as the SQL column shows it: bigint or double precision. */
Datum
opsmig_stats_datum(const OpsmigStats *st, int counter)
{
	return opsmig_counters[counter].is_double ?
		Float8GetDatum(opsmig_stats_double(st, counter)) :
		Int64GetDatum(opsmig_stats_int64(st, counter));
}

/* The name and type of value s of a row: the keys, then the counters. */
static const char *
value_name(const OpsmigStatsKey *keys, int nkeys, int s)
{
	return s < nkeys ? keys[s].column : opsmig_counters[s - nkeys].column;
}

static Oid
value_type(const OpsmigStatsKey *keys, int nkeys, int s)
{
	if (s < nkeys)
		return keys[s].type;
	return opsmig_counters[s - nkeys].is_double ? FLOAT8OID : INT8OID;
}

/*
 * Which value of a row (the nkeys keys, then the counters in the list's
 * order) each column a stats function declares shows.  by_name: its columns
 * are matched by name, in any order (the functions of versions before 1.3);
 * else they must be exactly those values, in that order.  Either way each
 * column's type must be the value's: a datum read as another type crashes.
 * A list reordered without a new extension version, or SQL objects of
 * another version, fail here rather than show one counter under another's
 * name.
 */
int *
opsmig_stats_columns(TupleDesc desc, const OpsmigStatsKey *keys, int nkeys,
					 bool by_name, Oid fn_oid)
{
	int			nvalues = nkeys + OPSMIG_NUM_COUNTERS;
	int		   *source = palloc(sizeof(int) * desc->natts);
	int			a;

	if (!by_name && desc->natts != nvalues)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("function %s returns %d columns, but the loaded opsmig_fdw module fills %d",
						get_func_name(fn_oid), desc->natts, nvalues),
				 errhint("Run ALTER EXTENSION opsmig_fdw UPDATE, so that the SQL objects match the module.")));
	for (a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		int			s = a;

		/* A row type altered since: a dropped column has no type to show. */
		if (att->attisdropped)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("function %s returns a row type with a dropped column, which the loaded opsmig_fdw module cannot fill",
							get_func_name(fn_oid)),
					 errhint("Declare the function with the columns of opsmig_fdw_stats(), or run ALTER EXTENSION opsmig_fdw UPDATE.")));
		if (by_name)
		{
			for (s = 0; s < nvalues; s++)
				if (strcmp(NameStr(att->attname), value_name(keys, nkeys, s)) == 0)
					break;
			if (s == nvalues)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("function %s returns column \"%s\", which the loaded opsmig_fdw module does not fill",
								get_func_name(fn_oid), NameStr(att->attname)),
						 errhint("Run ALTER EXTENSION opsmig_fdw UPDATE, so that the SQL objects match the module.")));
		}
		if (strcmp(NameStr(att->attname), value_name(keys, nkeys, s)) != 0 ||
			att->atttypid != value_type(keys, nkeys, s))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("function %s does not return the columns the loaded opsmig_fdw module fills",
							get_func_name(fn_oid)),
					 errdetail("Column %d is \"%s\" of type %s, where the module fills \"%s\" of type %s.",
							   a + 1, NameStr(att->attname),
							   format_type_be(att->atttypid),
							   value_name(keys, nkeys, s),
							   format_type_be(value_type(keys, nkeys, s))),
					 errhint("Run ALTER EXTENSION opsmig_fdw UPDATE, so that the SQL objects match the module.")));
		source[a] = s;
	}
	return source;
}

/*
 * Count a failed request by its HTTP code (0: no HTTP answer): in the first
 * error counter whose codes include it.  Other codes count nowhere.
 */
void
opsmig_stats_count_error(OpsmigStats *st, long http_code)
{
	int			i;

	for (i = 0; i < OPSMIG_NUM_COUNTERS; i++)
	{
		const OpsmigCounter *c = &opsmig_counters[i];

		if (c->http_from >= 0 && http_code >= c->http_from && http_code <= c->http_to)
		{
			Assert(!c->is_double);
			(*(int64 *) ((char *) st + c->offset))++;
			return;
		}
	}
}

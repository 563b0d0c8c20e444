/*-------------------------------------------------------------------------
 *
 * option.c
 *		  The options opsmig_fdw accepts, their validator, and the parsing
 *		  of server options, user mapping keys and the column map.
 *
 * Every option is checked at CREATE/ALTER time so that a mistake shows up
 * where it is made, not at the first query.  Secrets are accepted only in
 * user mappings, and no message here ever prints an option's value for an
 * option that may hold one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "http.h"
#include "opsmig_fdw.h"

typedef enum OptionType
{
	OPT_STRING,
	OPT_URL,
	OPT_SECRET,
	OPT_BOOL,
	OPT_SECONDS,				/* positive, fractional seconds */
	OPT_INT,
	OPT_REAL
} OptionType;

typedef struct OpsmigOption
{
	const char *name;
	Oid			context;		/* catalog the option belongs to */
	OptionType	type;
	double		min;			/* range for numeric options */
	double		max;
	bool		superuser_only; /* changes the security of every user */
	bool		required;
} OpsmigOption;

/* A reply is copied into one palloc'd chunk with a NUL after it. */
#define MAX_RESPONSE_BYTES	((double) (MaxAllocSize - 1))

static const OpsmigOption valid_options[] = {
	{"base_url", ForeignServerRelationId, OPT_URL, 0, 0, false, true},
	{"connect_timeout", ForeignServerRelationId, OPT_SECONDS, 0.001, 3600},
	{"request_timeout", ForeignServerRelationId, OPT_SECONDS, 0.001, 86400},
	{"envelope", ForeignServerRelationId, OPT_BOOL},
	{"max_concurrent_requests", ForeignServerRelationId, OPT_INT, 1, 64},
	{"max_retries", ForeignServerRelationId, OPT_INT, 0, 10},
	{"max_response_bytes", ForeignServerRelationId, OPT_INT, 1024, MAX_RESPONSE_BYTES},
	{"request_cost", ForeignServerRelationId, OPT_REAL, 0, 1e10},
	{"cache_ttl", ForeignServerRelationId, OPT_REAL, 0, 86400},
	{"cache_ttl", ForeignTableRelationId, OPT_REAL, 0, 86400},
	{"max_requests_per_minute", ForeignServerRelationId, OPT_INT, 1, 1000000},
	{"rate_limit_wait", ForeignServerRelationId, OPT_REAL, 0, 86400},
	{"ssl_verify", ForeignServerRelationId, OPT_BOOL, 0, 0, true},
	{"ca_file", ForeignServerRelationId, OPT_STRING, 0, 0, true},
	{"proxy", ForeignServerRelationId, OPT_URL, 0, 0, true},
	{"public_key", UserMappingRelationId, OPT_STRING, 0, 0, false, true},
	{"private_key", UserMappingRelationId, OPT_SECRET, 0, 0, false, true},
	{"column_name", AttributeRelationId, OPT_STRING},
	{NULL}
};

/* Defaults, in the units of OpsmigServerOptions. */
#define DEFAULT_CONNECT_TIMEOUT_MS		10000
#define DEFAULT_REQUEST_TIMEOUT_MS		30000
#define DEFAULT_MAX_CONCURRENT			8
#define DEFAULT_MAX_RETRIES				3
#define DEFAULT_MAX_RESPONSE_BYTES		(1024 * 1024)
#define DEFAULT_REQUEST_COST			100.0

static const char *const column_names[OPSMIG_NUM_COLUMNS] = {
	"org_id", "org_name", "status", "link_token"
};

PG_FUNCTION_INFO_V1(opsmig_fdw_validator);

/* The validator's OID, known once it has run: it marks our servers. */
static Oid	validator_oid = InvalidOid;
PG_FUNCTION_INFO_V1(opsmig_fdw_check_table);

static const OpsmigOption *
find_option(const char *name, Oid context, const OpsmigOption **elsewhere)
{
	const OpsmigOption *opt;

	*elsewhere = NULL;
	for (opt = valid_options; opt->name; opt++)
	{
		if (strcmp(opt->name, name) != 0)
			continue;
		if (opt->context == context)
			return opt;
		*elsewhere = opt;
	}
	return NULL;
}

/* Where an option given in the wrong place belongs, as an errhint(). */
static int
elsewhere_hint(const char *name, Oid context)
{
	switch (context)
	{
		case ForeignServerRelationId:
			return errhint("Set \"%s\" on the server instead.", name);
		case ForeignTableRelationId:
			return errhint("Set \"%s\" on the foreign table instead.", name);
		case UserMappingRelationId:
			return errhint("Set \"%s\" in the user mapping instead.", name);
		case AttributeRelationId:
			return errhint("Set \"%s\" on a column of the foreign table instead.", name);
	}
	return 0;
}

static void
report_unknown_option(const char *name, Oid context, const OpsmigOption *elsewhere)
{
	const OpsmigOption *opt;
	StringInfoData buf;

	if (elsewhere && elsewhere->type == OPT_SECRET)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"%s\" is accepted only in a user mapping", name),
				 errhint("Secrets belong in CREATE USER MAPPING ... OPTIONS (public_key '...', private_key '...'), which only its owner and superusers can read.")));
	if (elsewhere)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\"", name),
				 elsewhere_hint(name, elsewhere->context)));

	initStringInfo(&buf);
	for (opt = valid_options; opt->name; opt++)
		if (opt->context == context)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", opt->name);
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\"", name),
			 buf.len > 0 ?
			 errhint("Valid options in this context are: %s.", buf.data) :
			 errhint("There are no valid options in this context.")));
}

/*
 * Check an http(s) URL with the transport's parser (libcurl's, the one that
 * will use it).  Credentials in the URL are refused (and never echoed):
 * keys go in the user mapping.
 */
static void
check_url(const char *optname, const char *value)
{
	bool		is_base_url = strcmp(optname, "base_url") == 0;
	const char *curl_problem;	/* libcurl's own words */
	const char *problem = NULL; /* a full sentence, translatable */

	switch (http_check_url(value, is_base_url, &curl_problem))
	{
		case HTTP_URL_OK:
			return;
		case HTTP_URL_CREDENTIALS:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid value for option \"%s\"", optname),
					 errdetail("The URL contains credentials."),
					 errhint("Put the API keys in the user mapping (public_key, private_key), not in the URL.")));
			break;
		case HTTP_URL_UNPARSABLE:
			break;
		case HTTP_URL_SCHEME:
			problem = gettext_noop("Only http and https URLs are supported.");
			break;
		case HTTP_URL_NO_HOST:
			problem = gettext_noop("The URL has no host.");
			break;
		case HTTP_URL_QUERY:
			problem = gettext_noop("The URL has a query string or fragment.");
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", optname, value),
			 problem ? errdetail_internal("%s", _(problem)) :
			 errdetail("The URL is not usable: %s.", curl_problem),
			 is_base_url ?
			 errhint("Use the API's base URL, such as https://opsmanager.example.com:8443/api/public/v1.0 or https://cloud.mongodb.com/api/public/v1.0.") : 0));
}

static double
parse_number(const OpsmigOption *opt, const char *value)
{
	double		d;
	char	   *end;

	errno = 0;
	d = strtod(value, &end);
	while (*end == ' ')
		end++;
	if (errno != 0 || end == value || *end != '\0' || isnan(d) ||
		(opt->type == OPT_INT && d != floor(d)) ||
		d < opt->min || d > opt->max)
	{
		if (opt->type == OPT_INT)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
					 errhint("\"%s\" takes a whole number from %.0f to %.0f.",
							 opt->name, opt->min, opt->max)));
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
				 opt->type == OPT_SECONDS ?
				 errhint("\"%s\" takes a number of seconds greater than 0 and at most %.0f.",
						 opt->name, opt->max) :
				 errhint("\"%s\" takes a number from %g to %g.", opt->name, opt->min, opt->max)));
	}
	return d;
}

static void
check_option_value(const OpsmigOption *opt, DefElem *def)
{
	const char *value = defGetString(def);

	switch (opt->type)
	{
		case OPT_URL:
			check_url(opt->name, value);
			break;
		case OPT_BOOL:
			(void) defGetBoolean(def);
			break;
		case OPT_SECONDS:
		case OPT_INT:
		case OPT_REAL:
			(void) parse_number(opt, value);
			break;
		case OPT_STRING:
		case OPT_SECRET:
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" must not be empty", opt->name)));
			if (opt->type == OPT_SECRET || strcmp(opt->name, "public_key") == 0)
			{
				const char *p;

				/* Control characters would corrupt the digest exchange. */
				for (p = value; *p; p++)
					if ((unsigned char) *p < 0x20 || *p == 0x7f)
						ereport(ERROR,
								(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
								 errmsg("option \"%s\" contains control characters", opt->name)));
			}
			break;
	}
}

/*
 * The validator of every object: server, user mapping, foreign table and
 * column.  On ALTER it sees the options as they will be, so the required
 * ones are checked here too.  Who may set the superuser-only ones is
 * checked after the catalog changed (check_server_change).
 */
Datum
opsmig_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	const OpsmigOption *opt;
	ListCell   *lc;

	validator_oid = fcinfo->flinfo->fn_oid;
	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const OpsmigOption *elsewhere;
		ListCell   *lc2;

		opt = find_option(def->defname, catalog, &elsewhere);
		if (opt == NULL)
			report_unknown_option(def->defname, catalog, elsewhere);
		foreach(lc2, options)
			if (lc2 != lc && strcmp(((DefElem *) lfirst(lc2))->defname, def->defname) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("option \"%s\" given more than once", def->defname)));
		check_option_value(opt, def);
	}

	for (opt = valid_options; opt->name; opt++)
	{
		bool		present = false;

		if (opt->context != catalog || !opt->required)
			continue;
		foreach(lc, options)
			if (strcmp(((DefElem *) lfirst(lc))->defname, opt->name) == 0)
				present = true;
		if (!present)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 catalog == UserMappingRelationId ?
					 errmsg("option \"%s\" is required for an opsmig_fdw user mapping", opt->name) :
					 errmsg("option \"%s\" is required for an opsmig_fdw server", opt->name),
					 catalog == UserMappingRelationId ?
					 errhint("Give the API key pair: OPTIONS (public_key '...', private_key '...').") :
					 errhint("Give the API's base URL: OPTIONS (base_url 'https://opsmanager.example.com:8443/api/public/v1.0').")));
	}
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * Superuser-only options
 *
 * A non-superuser who owns a server may neither set, change nor drop
 * ssl_verify, ca_file or proxy, and may change the other options freely.
 * The validator cannot tell those apart: it is given the options as they
 * will be, merged with the ones the server keeps, and not which server it
 * is.  So the check runs in an object-access hook just after CREATE SERVER
 * or ALTER SERVER wrote the catalog, where the server's OID is known and
 * both rows can be read: the old one is what the catalog snapshot still
 * sees (a statement's own change is invisible to it until the next
 * command), the new one what SnapshotSelf sees.  An error there undoes the
 * statement like any other.  A ProcessUtility hook would have to redo
 * ALTER SERVER's ADD/SET/DROP merge itself; this one compares what is
 * stored.  The hook is in place whenever it matters: any change of a
 * server's options calls the validator first, which loads this library.
 * ----------------------------------------------------------------
 */

static object_access_hook_type next_object_access_hook = NULL;

/* The catalog row of a server as this command wrote it, or NULL. */
static List *
server_options_written(Oid srvid, Oid *fdwid)
{
	Relation	rel = table_open(ForeignServerRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *options = NIL;

	*fdwid = InvalidOid;
	ScanKeyInit(&key, Anum_pg_foreign_server_oid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(srvid));
	scan = systable_beginscan(rel, ForeignServerOidIndexId, true, SnapshotSelf, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_foreign_server_srvoptions,
									 RelationGetDescr(rel), &isnull);

		*fdwid = ((Form_pg_foreign_server) GETSTRUCT(tup))->srvfdw;
		if (!isnull)
			options = untransformRelOptions(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return options;
}

static const char *
option_value(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
		if (strcmp(((DefElem *) lfirst(lc))->defname, name) == 0)
			return defGetString((DefElem *) lfirst(lc));
	return NULL;
}

static void
check_server_change(Oid srvid)
{
	ForeignServer *before = GetForeignServerExtended(srvid, FSV_MISSING_OK);
	List	   *old_options = before ? before->options : NIL;
	List	   *new_options;
	Oid			fdwid;
	const OpsmigOption *opt;

	new_options = server_options_written(srvid, &fdwid);
	if (!OidIsValid(fdwid) ||
		GetForeignDataWrapper(fdwid)->fdwvalidator != validator_oid)
		return;					/* another wrapper's server */

	for (opt = valid_options; opt->name; opt++)
	{
		const char *was;
		const char *now;

		if (!opt->superuser_only || opt->context != ForeignServerRelationId)
			continue;
		was = option_value(old_options, opt->name);
		now = option_value(new_options, opt->name);
		if ((was == NULL && now == NULL) ||
			(was != NULL && now != NULL && strcmp(was, now) == 0))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 now == NULL ?
				 errmsg("permission denied to drop option \"%s\"", opt->name) :
				 errmsg("permission denied to set option \"%s\"", opt->name),
				 errdetail("\"%s\" changes how every user of the server reaches the API; only a superuser may set, change or drop it.",
						   opt->name)));
	}
}

static void
opsmig_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					 int subId, void *arg)
{
	if (next_object_access_hook)
		next_object_access_hook(access, classId, objectId, subId, arg);
	if ((access == OAT_POST_CREATE || access == OAT_POST_ALTER) &&
		classId == ForeignServerRelationId && OidIsValid(validator_oid) &&
		!superuser())
		check_server_change(objectId);
}

void
opsmig_option_init(void)
{
	next_object_access_hook = object_access_hook;
	object_access_hook = opsmig_object_access;
}

static const OpsmigOption *
option_def(const char *name)
{
	const OpsmigOption *opt;

	for (opt = valid_options; opt->name; opt++)
		if (strcmp(opt->name, name) == 0)
			return opt;
	elog(ERROR, "opsmig_fdw: unknown option \"%s\"", name);
	return NULL;
}

void
opsmig_get_server_options(ForeignServer *server, OpsmigServerOptions *opts)
{
	ListCell   *lc;

	memset(opts, 0, sizeof(*opts));
	opts->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	opts->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
	opts->max_concurrent_requests = DEFAULT_MAX_CONCURRENT;
	opts->max_retries = DEFAULT_MAX_RETRIES;
	opts->max_response_bytes = DEFAULT_MAX_RESPONSE_BYTES;
	opts->request_cost = DEFAULT_REQUEST_COST;
	opts->ssl_verify = true;
	opts->rate_limit_wait_ms = -1;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const char *name = def->defname;

		if (strcmp(name, "base_url") == 0)
		{
			char	   *url = pstrdup(defGetString(def));
			size_t		len = strlen(url);

			/* Paths are appended with a leading slash. */
			while (len > 0 && url[len - 1] == '/')
				url[--len] = '\0';
			opts->base_url = url;
		}
		else if (strcmp(name, "connect_timeout") == 0)
			opts->connect_timeout_ms = (int) ceil(parse_number(option_def(name), defGetString(def)) * 1000);
		else if (strcmp(name, "request_timeout") == 0)
			opts->request_timeout_ms = (int) ceil(parse_number(option_def(name), defGetString(def)) * 1000);
		else if (strcmp(name, "envelope") == 0)
			opts->envelope = defGetBoolean(def);
		else if (strcmp(name, "max_concurrent_requests") == 0)
			opts->max_concurrent_requests = (int) parse_number(option_def(name), defGetString(def));
		else if (strcmp(name, "max_retries") == 0)
			opts->max_retries = (int) parse_number(option_def(name), defGetString(def));
		else if (strcmp(name, "max_response_bytes") == 0)
			opts->max_response_bytes = (int) parse_number(option_def(name), defGetString(def));
		else if (strcmp(name, "request_cost") == 0)
			opts->request_cost = parse_number(option_def(name), defGetString(def));
		else if (strcmp(name, "cache_ttl") == 0)
			opts->cache_ttl_ms = (int) (parse_number(option_def(name), defGetString(def)) * 1000);
		else if (strcmp(name, "max_requests_per_minute") == 0)
			opts->max_requests_per_minute = (int) parse_number(option_def(name), defGetString(def));
		else if (strcmp(name, "rate_limit_wait") == 0)
			opts->rate_limit_wait_ms = (int) (parse_number(option_def(name), defGetString(def)) * 1000);
		else if (strcmp(name, "ssl_verify") == 0)
			opts->ssl_verify = defGetBoolean(def);
		else if (strcmp(name, "ca_file") == 0)
			opts->ca_file = pstrdup(defGetString(def));
		else if (strcmp(name, "proxy") == 0)
			opts->proxy = pstrdup(defGetString(def));
	}
	if (opts->base_url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has no base_url", server->servername)));
}

/* cache_ttl of a foreign table: its own option, else its server's. */
int
opsmig_table_cache_ttl_ms(Oid relid, const OpsmigServerOptions *opts)
{
	ListCell   *lc;

	foreach(lc, GetForeignTable(relid)->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "cache_ttl") == 0)
			return (int) (parse_number(option_def("cache_ttl"), defGetString(def)) * 1000);
	}
	return opts->cache_ttl_ms;
}

void
opsmig_get_user_keys(UserMapping *user, ForeignServer *server,
					 char **public_key, char **private_key)
{
	ListCell   *lc;

	*public_key = NULL;
	*private_key = NULL;
	foreach(lc, user->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "public_key") == 0)
			*public_key = pstrdup(defGetString(def));
		else if (strcmp(def->defname, "private_key") == 0)
			*private_key = pstrdup(defGetString(def));
	}
	if (*public_key == NULL || *private_key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("the user mapping for server \"%s\" has no API key pair",
						server->servername),
				 errhint("Set both public_key and private_key: ALTER USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (ADD public_key '...', ADD private_key '...').",
						 quote_identifier(server->servername))));
}

const char *
opsmig_column_name(OpsmigColumn col)
{
	return column_names[col];
}

/*
 * Map each attribute of a foreign table to the API field it shows, by name
 * or by its column_name option.  Unknown names, other types and two columns
 * for one field are errors, with the valid names in the hint.
 */
OpsmigColumn *
opsmig_column_map(Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	OpsmigColumn *map = palloc(sizeof(OpsmigColumn) * Max(tupdesc->natts, 1));
	bool		seen[OPSMIG_NUM_COLUMNS] = {false};
	int			i;

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		const char *name = NameStr(attr->attname);
		ListCell   *lc;
		int			c;

		map[i] = OPSMIG_COL_NONE;
		if (attr->attisdropped)
			continue;
		foreach(lc, GetForeignColumnOptions(RelationGetRelid(rel), attr->attnum))
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, "column_name") == 0)
				name = defGetString(def);
		}
		for (c = 0; c < OPSMIG_NUM_COLUMNS; c++)
			if (strcmp(name, column_names[c]) == 0)
				break;
		if (c == OPSMIG_NUM_COLUMNS)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_COLUMN_NAME),
					 errmsg("column \"%s\" of foreign table \"%s\" is not a migration link field",
							NameStr(attr->attname), RelationGetRelationName(rel)),
					 errhint("Valid column names are org_id, org_name, status and link_token; OPTIONS (column_name '...') maps a column of another name.")));
		if (seen[c])
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_COLUMN_NAME),
					 errmsg("foreign table \"%s\" has more than one column for field \"%s\"",
							RelationGetRelationName(rel), column_names[c])));
		if (attr->atttypid != TEXTOID && attr->atttypid != VARCHAROID)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"%s\" of foreign table \"%s\" has type %s, but opsmig_fdw columns are text",
							NameStr(attr->attname), RelationGetRelationName(rel),
							format_type_be(attr->atttypid)),
					 errhint("Declare it as text or varchar.")));
		seen[c] = true;
		map[i] = (OpsmigColumn) c;
	}
	return map;
}

/*
 * Called by the extension's event trigger after CREATE/ALTER FOREIGN TABLE
 * and IMPORT FOREIGN SCHEMA, so a wrong column is refused when it is
 * declared rather than at the first query.
 */
Datum
opsmig_fdw_check_table(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel = table_open(relid, AccessShareLock);

	(void) opsmig_column_map(rel);
	table_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}

/*-------------------------------------------------------------------------
 *
 * api_change.c
 *		  Creating and deleting migration links (INSERT, COPY FROM, DELETE):
 *		  batches of POSTs or DELETEs driven to their end, and the note of
 *		  each change the API made, or may have made, for the rollback
 *		  warning (connection.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "api_int.h"

/*
 * Note a change for the rollback warning.  certain: the API said it acted;
 * otherwise the request was sent and no answer came, so it may have.
 */
static void
api_note_change(ApiCall *call, bool certain)
{
	const char *id = call->org_id;

	if (call->op == OPSMIG_REQ_CREATE)
		opsmig_note_remote_change(certain ?
								  psprintf("created the migration link of organization %s", id) :
								  psprintf("may have created the migration link of organization %s (no reply came)", id));
	else
		opsmig_note_remote_change(certain ?
								  psprintf("deleted the migration link of organization %s", id) :
								  psprintf("may have deleted the migration link of organization %s (no reply came)", id));
}

/*
 * Was this completed create or delete sent, with no word from the API on
 * what it did?  The transfer failed after sending, or a gateway in front
 * answered that it got no (valid) reply from the API: 502, 504.  Those are
 * the proxy's pages, never the API's, and say nothing of whether it acted.
 */
static bool
api_reply_lost(HttpRequest *req)
{
	if (req->http_code == 0)
		return api_maybe_reached(req);
	return req->http_code == 502 || req->http_code == 504;
}

/*
 * Did this completed create or delete change something, as far as we can
 * tell without throwing?  1: yes (2xx); 0: no; -1: it may have (see
 * api_reply_lost).
 */
static int
api_outcome(OpsmigConn *conn, HttpRequest *req)
{
	OpsmigReply reply;
	long		code;

	if (api_reply_lost(req))
		return -1;
	if (req->http_code == 0)
		return 0;
	(void) parse_reply(req->response, req->response_len,
					   opsmig_conn_options(conn)->envelope,
					   req->http_code, &reply, NULL, 0);
	code = reply.code;
	parse_reply_free(&reply);
	return code >= 200 && code < 300 ? 1 : 0;
}

/*
 * The wait for a create or delete batch was ended (cancel, statement_timeout,
 * a transport failure): note what the API did or may have done.  Replies
 * that came but were not handed out yet count as done; requests still in
 * flight may have been applied, and nobody will hear of them now.
 */
static void
api_note_unsettled(OpsmigConn *conn, ApiBatch *batch, List *reqs)
{
	HttpRequest *req;
	ListCell   *lc;

	while ((req = http_batch_take_done(batch->http)) != NULL)
	{
		int			outcome = api_outcome(conn, req);

		if (outcome != 0)
			api_note_change((ApiCall *) req->arg, outcome > 0);
	}
	foreach(lc, reqs)
	{
		req = (HttpRequest *) lfirst(lc);
		if (http_request_in_flight(req))
			api_note_change((ApiCall *) req->arg, false);
	}
}

typedef void (*ApiModifyDone) (OpsmigConn *conn, HttpRequest *req,
							   OpsmigReply *reply, void *arg);

/*
 * Drive a batch of creates or deletes (reqs, all added) to its end, handing
 * each settled reply to done(), which notes the change.  The first error is
 * kept and raised once the requests in flight are settled: the rollback
 * warning then lists every change the API made, and no request is abandoned
 * in flight.  Requests not sent yet never are: the statement fails anyway,
 * and each would be one more change the rollback cannot undo (or, under a
 * bad key or a rate limit, one more refused request).  If the wait itself
 * ends (cancel, statement_timeout), what is known is noted before the error
 * goes on.
 */
static void
api_modify_batch(OpsmigConn *conn, ApiBatch *batch, List *reqs,
				 ApiModifyDone done, void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ErrorData  *volatile first_error = NULL;

	for (;;)
	{
		HttpRequest *volatile req = NULL;

		/* After an error, a 429's retry is not sent either. */
		if (first_error)
			http_batch_drop_queued(batch->http);
		PG_TRY();
		{
			req = http_batch_next(batch->http);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			api_note_unsettled(conn, batch, reqs);
			PG_RE_THROW();
		}
		PG_END_TRY();
		if (req == NULL)
			break;
		/* Forget again now: another session may have cached it while this ran. */
		opsmig_forget_org(((ApiCall *) req->arg)->org_id);

		PG_TRY();
		{
			OpsmigReply reply;

			/* Sent, and no word of what the API did: reported below, noted here. */
			if (api_reply_lost(req))
				api_note_change((ApiCall *) req->arg, false);
			if (api_settle(batch, req, &reply))
				done(conn, req, &reply, arg);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			if (first_error == NULL)
				first_error = CopyErrorData();
			FlushErrorState();
		}
		PG_END_TRY();
	}
	if (first_error)
		ReThrowError(first_error);
}

typedef struct ApiCreated
{
	MemoryContext caller;		/* where the statuses go */
	char	  **statuses;
} ApiCreated;

static void
api_create_done(OpsmigConn *conn, HttpRequest *req, OpsmigReply *reply, void *arg)
{
	ApiCreated *created = (ApiCreated *) arg;
	ApiCall    *call = (ApiCall *) req->arg;
	char	   *status;

	/* The link exists now, whatever the body says. */
	api_note_change(call, true);
	status = api_reply_status(conn, req, reply);
	created->statuses[call->row] = status ?
		MemoryContextStrdup(created->caller, status) : NULL;
}

/*
 * Create the links of n organizations, up to max_concurrent_requests at a
 * time; statuses[i] gets the status the API answered for org_ids[i], or
 * NULL when its reply did not carry one.  Every row is checked before any
 * request is sent.  The requests are also counted in *work, when given.
 */
void
api_create_links(OpsmigConn *conn, int n, char **org_ids, char **tokens,
				 char **statuses, OpsmigStats *work)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "opsmig_fdw create",
											  ALLOCSET_SMALL_SIZES);
	ApiCreated	created = {CurrentMemoryContext, statuses};
	MemoryContext old = MemoryContextSwitchTo(cxt);
	ApiBatch   *batch = api_batch_create(conn, work);
	List	   *reqs = NIL;
	int			i;

	for (i = 0; i < n; i++)
		api_check_org_id(org_ids[i], "org_id");
	for (i = 0; i < n; i++)
	{
		HttpRequest *req = api_request(conn, OPSMIG_REQ_CREATE, org_ids[i], 0);
		char	   *raw;

		((ApiCall *) req->arg)->row = i;
		raw = parse_create_body(tokens[i]);
		if (raw == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory building the request body")));
		req->body = pstrdup(raw);
		free(raw);
		reqs = lappend(reqs, req);
	}
	for (i = 0; i < n; i++)
	{
		opsmig_forget_org(org_ids[i]);
		http_batch_add(batch->http, (HttpRequest *) list_nth(reqs, i), false);
	}

	api_modify_batch(conn, batch, reqs, api_create_done, &created);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

static void
api_delete_done(OpsmigConn *conn, HttpRequest *req, OpsmigReply *reply, void *arg)
{
	if (reply->code != 404)
	{
		(*(int *) arg)++;
		api_note_change((ApiCall *) req->arg, true);
	}
	parse_reply_free(reply);
}

/*
 * Delete the links of these organizations, up to max_concurrent_requests
 * at a time.  Returns how many existed (204); a 404 is no link, not an error.
 * The requests are also counted in *work, when given.
 */
int
api_delete_links(OpsmigConn *conn, List *org_ids, OpsmigStats *work)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "opsmig_fdw delete",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	ApiBatch   *batch = api_batch_create(conn, work);
	List	   *reqs = NIL;
	ListCell   *lc;
	int			deleted = 0;

	foreach(lc, org_ids)
		api_check_org_id((char *) lfirst(lc), "org_id");
	foreach(lc, org_ids)
	{
		HttpRequest *req = api_request(conn, OPSMIG_REQ_DELETE, lfirst(lc), 0);

		opsmig_forget_org(lfirst(lc));
		reqs = lappend(reqs, req);
		http_batch_add(batch->http, req, false);
	}
	api_modify_batch(conn, batch, reqs, api_delete_done, &deleted);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return deleted;
}

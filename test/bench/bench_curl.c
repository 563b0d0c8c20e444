/*
 * bench_curl.c -- the documented "one curl call per organization" loop, but
 * from ONE reused libcurl easy handle: sequential GETs of
 *   BASE_URL/orgs/{id}/liveExport/migrationLink/status
 * for the organization ids read from stdin (one per line).  The handle keeps
 * its keep-alive connection and its digest nonce, so only the first request
 * should pay the 401 challenge round trip.  Used by test/bench/run.sh (row (b)).
 *
 * Build: cc -O2 -o bench_curl test/bench/bench_curl.c $(pkg-config --cflags --libs libcurl)
 * Usage: bench_curl BASE_URL PUBLIC_KEY < ids      (private key in $SIM_PRIVATE_KEY)
 * Prints one line:
 *   requests=N exchanges=E status_200=A status_404=B other=C elapsed_ms=T
 * where exchanges counts every HTTP response seen, 401 challenges included.
 * Exits 1 on a transport error or an unexpected status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define MAX_IDS		100000		/* bounded loop */

static long exchanges = 0;

static size_t
discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void) ptr;
	(void) userdata;
	return size * nmemb;
}

static size_t
count_status_lines(char *line, size_t size, size_t nitems, void *userdata)
{
	size_t		len = size * nitems;

	(void) userdata;
	if (len > 5 && strncmp(line, "HTTP/", 5) == 0)
		exchanges++;
	return len;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

int
main(int argc, char **argv)
{
	const char *base;
	const char *priv = getenv("SIM_PRIVATE_KEY");
	CURL	   *e;
	char		id[128];
	char		url[1024];
	long		requests = 0,
				ok = 0,
				notfound = 0,
				other = 0;
	double		t0;

	if (argc != 3 || priv == NULL)
	{
		fprintf(stderr, "usage: SIM_PRIVATE_KEY=... %s BASE_URL PUBLIC_KEY < ids\n", argv[0]);
		return 2;
	}
	base = argv[1];

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK || (e = curl_easy_init()) == NULL)
	{
		fprintf(stderr, "bench_curl: cannot initialize libcurl\n");
		return 1;
	}
	curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long) CURLAUTH_DIGEST);
	curl_easy_setopt(e, CURLOPT_USERNAME, argv[2]);
	curl_easy_setopt(e, CURLOPT_PASSWORD, priv);
	curl_easy_setopt(e, CURLOPT_PROXY, "");	/* loopback only, whatever the env says */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, count_status_lines);

	t0 = now_ms();
	while (requests < MAX_IDS && fgets(id, sizeof(id), stdin) != NULL)
	{
		CURLcode	rc;
		long		code = 0;

		id[strcspn(id, "\r\n")] = '\0';
		if (id[0] == '\0')
			continue;
		snprintf(url, sizeof(url), "%s/orgs/%s/liveExport/migrationLink/status", base, id);
		curl_easy_setopt(e, CURLOPT_URL, url);
		rc = curl_easy_perform(e);
		requests++;
		if (rc != CURLE_OK)
		{
			fprintf(stderr, "bench_curl: %s: %s\n", id, curl_easy_strerror(rc));
			return 1;
		}
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		if (code == 200)
			ok++;
		else if (code == 404)
			notfound++;
		else
			other++;
	}
	printf("requests=%ld exchanges=%ld status_200=%ld status_404=%ld other=%ld elapsed_ms=%.1f\n",
		   requests, exchanges, ok, notfound, other, now_ms() - t0);
	curl_easy_cleanup(e);
	curl_global_cleanup();
	return other ? 1 : 0;
}

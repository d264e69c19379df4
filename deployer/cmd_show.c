/* cmd_show.c: read-only commands: 'list', 'show [ID]' and 'status'. */
#include <bsd/stdlib.h>
#include <stdio.h>

#include "deploy.h"
#include "deployer.h"
#include "keys.h"
#include "log.h"
#include "macro.h"
#include "util.h"

static void print_json(json_t *j) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
}

static void origin_text(const struct deploy_origin *o, char *buf, size_t len) {
        snprintf(buf, len, "%s%s%s%s%s", o->hostname ? o->hostname : "-", o->commit ? " commit " : "",
                 o->commit ? o->commit : "", o->job_url ? " " : "", o->job_url ? o->job_url : "");
}

int cmd_list(struct deployer *d) {
        _cleanup_etcd_ struct etcd_client *c = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        _cleanup_(json_decrefp) json_t *arr = json_array();
        struct etcd_error e = {0};
        size_t n = 0;
        int r;

        if (!arr || deployer_connect(d, &c) < 0)
                return EXIT_ERROR;
        r = deploy_list_ids(c, &ids, &n, &e);
        if (r < 0) {
                log_errorx("cannot list deploys: %s", e.msg);
                return EXIT_ERROR;
        }
        if (!d->json)
                printf("%-6s %-20s %-12s %s\n", "ID", "TIME", "HASH", "ORIGIN");
        for (size_t i = 0; i < n; i++) {
                struct deploy rec = {0};
                char origin[1024];
                r = deploy_read(c, ids[i], &rec, &e);
                if (r == -ENOENT)
                        continue; /* deleted meanwhile */
                if (r < 0) {
                        log_errorx("cannot read deploy %lld: %s", (long long)ids[i], e.msg);
                        return EXIT_ERROR;
                }
                if (d->json)
                        json_array_append_new(arr, deploy_to_json(&rec, false));
                else {
                        origin_text(&rec.origin, origin, sizeof origin);
                        printf("%-6lld %-20s %.12s %s\n", (long long)rec.id, rec.time, rec.hash, origin);
                }
                deploy_clear(&rec);
        }
        if (d->json)
                print_json(arr);
        else if (n == 0)
                log_info("no deploys yet");
        return EXIT_DONE;
}

int cmd_show(struct deployer *d) {
        _cleanup_etcd_ struct etcd_client *c = NULL;
        struct deploy_head head = {0};
        struct deploy rec = {0};
        struct etcd_error e = {0};
        char origin[1024];
        int64_t id = 0;
        int r;

        if (d->args[0]) {
                const char *errstr = NULL;
                id = strtonum(d->args[0], 1, INT64_MAX, &errstr);
                if (errstr) {
                        fprintf(stderr, "mgmt-deploy: invalid deploy id '%s': expected a number >= 1\n",
                                d->args[0]);
                        return EXIT_USAGE;
                }
        }
        if (deployer_connect(d, &c) < 0)
                return EXIT_ERROR;
        if (id == 0) {
                r = deploy_read_latest(c, &head, &e);
                if (r < 0) {
                        log_errorx("cannot read the latest deploy: %s", e.msg);
                        return EXIT_ERROR;
                }
                if (head.id == 0) {
                        log_errorx("there is no deploy yet");
                        return EXIT_ERROR;
                }
                rec = head.record;
                head.record = (struct deploy){0};
                deploy_head_clear(&head);
        } else {
                r = deploy_read(c, id, &rec, &e);
                if (r == -ENOENT) {
                        log_errorx("there is no deploy %lld", (long long)id);
                        return EXIT_ERROR;
                }
                if (r < 0) {
                        log_errorx("cannot read deploy %lld: %s", (long long)id, e.msg);
                        return EXIT_ERROR;
                }
        }
        if (d->json) {
                json_t *j = deploy_to_json(&rec, true);
                if (j)
                        print_json(j);
                json_decref(j);
        } else {
                origin_text(&rec.origin, origin, sizeof origin);
                printf("id: %lld\ntime: %s\nhash: %s\nprevious: %s\norigin: %s\n", (long long)rec.id,
                       rec.time, rec.hash, rec.previous[0] ? rec.previous : "-", origin);
                if (rec.signer[0])
                        printf("signed: by key %.16s... (fingerprint %s)\n\n", rec.signer, rec.signer);
                else
                        printf("signed: no\n\n");
                fwrite(rec.graph ? rec.graph : "", 1, rec.graph_len, stdout);
                if (rec.graph_len > 0 && rec.graph[rec.graph_len - 1] != '\n')
                        fputc('\n', stdout);
        }
        deploy_clear(&rec);
        return EXIT_DONE;
}

int cmd_status(struct deployer *d) {
        _cleanup_etcd_ struct etcd_client *c = NULL;
        _cleanup_(json_decrefp) json_t *reply = NULL;
        _cleanup_(json_decrefp) json_t *arr = json_array();
        _cleanup_free_ char *prefix = key_status_prefix();
        struct etcd_error e = {0};
        struct etcd_kvs kvs = {0};
        int r;

        if (!arr || !prefix || deployer_connect(d, &c) < 0)
                return EXIT_ERROR;
        r = etcd_call_sync(c, ETCD_RANGE, etcd_req_range(prefix, true, 0, false), &reply, &e);
        if (r >= 0)
                r = etcd_parse_range(reply, &kvs, &e);
        if (r < 0) {
                log_errorx("cannot read agent status under '%s': %s", prefix, e.msg);
                return EXIT_ERROR;
        }
        if (!d->json)
                printf("%-24s %-6s %-10s %s\n", "HOST", "DEPLOY", "STATE", "SINCE");
        for (size_t i = 0; i < kvs.n; i++) {
                const char *host = key_host_suffix(kvs.kvs[i].key, prefix);
                struct host_status s;
                char err[256];
                if (!host)
                        continue;
                if (host_status_decode(host, kvs.kvs[i].value ? kvs.kvs[i].value : "", kvs.kvs[i].value_len,
                                       &s, err, sizeof err) < 0) {
                        log_warnx("%s", err);
                        continue;
                }
                if (d->json) {
                        json_t *errs = json_array();
                        for (char **p = s.errors; p && *p; p++)
                                json_array_append_new(errs, json_string(*p));
                        json_array_append_new(arr, json_pack("{s:s, s:I, s:s, s:s?, s:o}", "host", s.host,
                                                             "deploy", (json_int_t)s.deploy, "state",
                                                             deploy_state_to_string(s.state), "time", s.time,
                                                             "errors", errs));
                } else {
                        printf("%-24s %-6lld %-10s %s\n", s.host, (long long)s.deploy,
                               deploy_state_to_string(s.state), s.time ? s.time : "-");
                        for (char **p = s.errors; p && *p; p++)
                                printf("  error: %s\n", *p);
                }
                host_status_clear(&s);
        }
        etcd_kvs_clear(&kvs);
        if (d->json)
                print_json(arr);
        return EXIT_DONE;
}

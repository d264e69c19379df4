/* clusterstatus_table.c: the operator's table of `status`, printed from the
 * `status --json` document that clusterstatus.c builds. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clusterstatus.h"
#include "macro.h"

static void fmt_size(json_t *v, char *buf, size_t len) {
        if (!json_is_integer(v)) {
                snprintf(buf, len, "-");
                return;
        }
        double d = (double)json_integer_value(v);
        const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        size_t i = 0;
        while (d >= 1024 && i + 1 < ELEMENTSOF(u)) {
                d /= 1024;
                i++;
        }
        snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", d, u[i]);
}

static void fmt_age(long long s, char *buf, size_t len) {
        if (s < 0)
                snprintf(buf, len, "-");
        else if (s < 120)
                snprintf(buf, len, "%llds", s);
        else if (s < 7200)
                snprintf(buf, len, "%lldm", s / 60);
        else if (s < 172800)
                snprintf(buf, len, "%lldh", s / 3600);
        else
                snprintf(buf, len, "%lldd", s / 86400);
}

static const char *str_or(json_t *v, const char *def) {
        return json_is_string(v) ? json_string_value(v) : def;
}

static void fmt_int(json_t *v, char *buf, size_t len) {
        if (json_is_integer(v))
                snprintf(buf, len, "%lld", (long long)json_integer_value(v));
        else
                snprintf(buf, len, "-");
}

void cluster_status_render(json_t *doc, time_t now, FILE *f) {
        json_t *cluster = json_object_get(doc, CS_CLUSTER), *plan = json_object_get(doc, CS_PLAN), *h;
        char gen[32], ideal[32];
        size_t i;

        fmt_int(json_object_get(cluster, CS_GENERATION), gen, sizeof gen);
        fmt_int(json_object_get(doc, CS_IDEAL), ideal, sizeof ideal);
        fprintf(f,
                "cluster %s  generation %s  ideal %s  voters %lld (%lld healthy)  failure tolerance %lld  "
                "coordinator %s\n",
                str_or(json_object_get(cluster, CS_CLUSTER_ID), "-"), gen, ideal,
                (long long)json_integer_value(json_object_get(doc, CS_VOTERS)),
                (long long)json_integer_value(json_object_get(doc, CS_HEALTHY_VOTERS)),
                (long long)json_integer_value(json_object_get(doc, CS_FAILURE_TOLERANCE)),
                str_or(json_object_get(doc, CS_COORDINATOR), "(none)"));
        if (json_is_object(plan)) {
                const char *action = str_or(json_object_get(plan, "action"), "?");
                const char *host = str_or(json_object_get(plan, "host"), NULL);
                const char *why = str_or(json_object_get(plan, "why"), NULL);
                time_t since = rfc3339_parse(str_or(json_object_get(plan, "since"), NULL));
                char age[32] = "";
                if (since >= 0)
                        fmt_age(now > since ? (long long)(now - since) : 0, age, sizeof age);
                fprintf(f, "plan: %s%s%s%s%s%s%s%s\n", action, host ? " " : "", host ? host : "",
                        why ? ": " : "", why ? why : "", *age ? " (for " : "", age, *age ? ")" : "");
        } else
                fprintf(f, "plan: (none published)\n");
        fprintf(f, "%-20s %-9s %-16s %-6s %-7s %-6s %-9s %-8s %-6s %-10s %s\n", "HOST", "ROLE", "MEMBER-ID",
                "LEADER", "HEALTHY", "LAG", "DB", "VERSION", "DEPLOY", "STATE", "SNAPSHOT");
        json_array_foreach(json_object_get(doc, CS_HOSTS), i, h) {
                json_t *healthy = json_object_get(h, CS_H_HEALTHY);
                char lag[32], db[32], dep[32], snap[32] = "-";
                fmt_int(json_object_get(h, CS_H_RAFT_LAG), lag, sizeof lag);
                fmt_size(json_object_get(h, CS_H_DB_SIZE), db, sizeof db);
                fmt_int(json_object_get(h, CS_H_DEPLOY), dep, sizeof dep);
                json_t *age = json_object_get(h, CS_H_SNAPSHOT_AGE);
                if (json_is_integer(age))
                        fmt_age((long long)json_integer_value(age), snap, sizeof snap);
                const char *name = str_or(json_object_get(h, CS_H_NAME), "");
                fprintf(f, "%-20s %-9s %-16s %-6s %-7s %-6s %-9s %-8s %-6s %-10s %s",
                        *name ? name : "(unstarted)", str_or(json_object_get(h, CS_H_ROLE), "?"),
                        str_or(json_object_get(h, CS_H_MEMBER_ID), "-"),
                        json_is_true(json_object_get(h, CS_H_LEADER)) ? "*" : "",
                        json_is_null(healthy) || !healthy ? "-"
                        : json_is_true(healthy)           ? "yes"
                                                          : "NO",
                        lag, db, str_or(json_object_get(h, CS_H_VERSION), "-"), dep,
                        str_or(json_object_get(h, CS_H_DEPLOY_STATE), "-"), snap);
                const char *error = str_or(json_object_get(h, CS_H_ERROR), NULL);
                if (error)
                        fprintf(f, "  (%s)", error);
                fputc('\n', f);
        }
}

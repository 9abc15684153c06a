/* commands.h: the subcommands of bin/acbill.
 *
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand itself), parses its own options with getopt_long, and returns
 * the process exit status: 0, or an ac_status (sysexits style). */
#ifndef AC_COMMANDS_H
#define AC_COMMANDS_H

/* acbill migrate [--db CONNINFO]: create or upgrade the schemas. */
int cmd_migrate(int argc, char **argv);

/* acbill run [--period YYYY-MM] [--tenant ID]... [--out DIR] ...:
 * rate every tenant's period and record invoices (see run.h). */
int cmd_run(int argc, char **argv);

/* acbill sample --period YYYY-MM --tenants N --calls M [--seed S]:
 * load reproducible sample data (see sample.h). */
int cmd_sample(int argc, char **argv);

/* acbill upload --pending [--upload-url URL] | --list | --retarget URL
 * [--from URL] | --cancel FILE... | --cancel --all-for URL: deliver, list,
 * retarget or cancel what is pending in billing.uploads (see upload.h). */
int cmd_upload(int argc, char **argv);

/* acbill import pstn|graph-calls|licences --tenant ID ...: load
 * Microsoft's exports, saved Graph pages and licence snapshots into
 * usage.* (docs/billing-rules.md 6; see pstn.h, graphcalls.h, licences.h);
 * acbill import rates --plan P --currency C --valid-from T FILE: a rate
 * card into ref.rates (rates.h). */
int cmd_import(int argc, char **argv);

/* acbill pull --tenant ID --from DATE --to DATE [--licences]: the same,
 * live from Microsoft Graph (see graph.h). */
int cmd_pull(int argc, char **argv);

/* acbill reconcile --period YYYY-MM [--out DIR]: acbill's billing against
 * Microsoft's Partner Center charges (see reconcile/reconcile.h). */
int cmd_reconcile(int argc, char **argv);

#endif

-- verify.sql — check a refreshed UAT database on its own, without PROD (read-only: rolled back).
--
--   psql -v ON_ERROR_STOP=1 -d DB -f sql/verify.sql [-v allowed_domains=example.invalid,example.com]
--
-- 1. neutralization: no active mail server but the dummy one, no active cron but the autovacuum, no
--    payment provider enabled, no OAuth provider, no website domain, the neutralized flag set;
-- 2. anonymization: the marker set, no API key / 2FA device / queued mail left;
-- 3. every text, varchar and jsonb column of every table (from information_schema, not a list of
--    known fields): no e-mail address outside the allowed domains.
-- Findings are listed as check, table.column and count — never values — and make psql fail (exit 3).
-- The pipeline additionally compares every column with values sampled from PROD before the refresh
-- (shared/adapters/pii-verifier.ts), which this script cannot do on its own.
\set ON_ERROR_STOP 1
\if :{?allowed_domains}
\else
  \set allowed_domains 'example.invalid,example.com,example.org,example.net'
\endif
SET client_min_messages = warning;
BEGIN;
SET LOCAL odoo_mta.allowed_domains = :'allowed_domains';
SET LOCAL jit = off;
\ir lib/guards.sql
CREATE TEMP TABLE odoo_verify_finding (check_name text, place text, count bigint) ON COMMIT DROP;

DO $verify$
DECLARE
  n bigint;
  r record;
  q text;
  aggs text[];
  res record;
  allowed text[] := string_to_array(current_setting('odoo_mta.allowed_domains'), ',');
  email_re CONSTANT text := '([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})';
  cols text[];
  i int;
BEGIN
  -- 1. neutralization
  IF pg_temp.odoo_has_table('ir_mail_server') THEN
    SELECT count(*) INTO n FROM ir_mail_server WHERE active AND smtp_host IS DISTINCT FROM 'invalid';
    INSERT INTO odoo_verify_finding SELECT 'active mail server', 'ir_mail_server', n WHERE n > 0;
  END IF;
  IF pg_temp.odoo_has_table('ir_cron') THEN
    SELECT count(*) INTO n FROM ir_cron WHERE active
       AND id NOT IN (SELECT res_id FROM ir_model_data WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job');
    INSERT INTO odoo_verify_finding SELECT 'active cron', 'ir_cron', n WHERE n > 0;
  END IF;
  n := pg_temp.odoo_exec_if('payment_provider', '{state}', $q$SELECT 1 FROM payment_provider WHERE state NOT IN ('test', 'disabled')$q$);
  INSERT INTO odoo_verify_finding SELECT 'payment provider enabled', 'payment_provider', n WHERE n > 0;
  n := pg_temp.odoo_exec_if('auth_oauth_provider', '{enabled}', 'SELECT 1 FROM auth_oauth_provider WHERE enabled');
  INSERT INTO odoo_verify_finding SELECT 'OAuth provider enabled', 'auth_oauth_provider', n WHERE n > 0;
  n := pg_temp.odoo_exec_if('website', '{domain}', 'SELECT 1 FROM website WHERE domain IS NOT NULL');
  INSERT INTO odoo_verify_finding SELECT 'website domain set', 'website.domain', n WHERE n > 0;
  n := pg_temp.odoo_exec_if('fetchmail_server', '{active}', 'SELECT 1 FROM fetchmail_server WHERE active');
  INSERT INTO odoo_verify_finding SELECT 'incoming mail server active', 'fetchmail_server', n WHERE n > 0;
  IF pg_temp.odoo_has_table('ir_config_parameter') THEN
    INSERT INTO odoo_verify_finding SELECT 'flag missing', 'ir_config_parameter ' || k, 1
      FROM unnest(ARRAY['database.is_neutralized', 'odoo_mta.anonymized']) k
     WHERE NOT EXISTS (SELECT 1 FROM ir_config_parameter WHERE key = k AND value = 'True');
  END IF;
  -- 2. secrets and queues
  FOREACH q IN ARRAY ARRAY['res_users_apikeys', 'auth_totp_device', 'mail_mail', 'res_device_log'] LOOP
    n := pg_temp.odoo_exec_if(q, NULL, format('SELECT 1 FROM %I', q));
    INSERT INTO odoo_verify_finding SELECT 'rows left', q, n WHERE n > 0;
  END LOOP;
  -- 3. foreign e-mail addresses, every text column of every table, one pass per table
  FOR r IN
    SELECT c.table_name, array_agg(c.column_name ORDER BY c.ordinal_position) AS cols
      FROM information_schema.columns c
      JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
     WHERE c.table_schema = current_schema() AND c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json')
     GROUP BY c.table_name ORDER BY c.table_name
  LOOP
    cols := r.cols;
    aggs := '{}';
    FOR i IN 1 .. cardinality(cols) LOOP
      aggs := aggs || format($a$count(*) FILTER (WHERE strpos(%1$I::text, '@') > 0 AND EXISTS (
                 SELECT 1 FROM regexp_matches(%1$I::text, %2$L, 'g') m WHERE lower(split_part(m[1], '@', 2)) <> ALL (%3$L::text[])))$a$,
              cols[i], email_re, allowed);
    END LOOP;
    q := format('SELECT ARRAY[%s]::bigint[] AS counts FROM %I', array_to_string(aggs, ', '), r.table_name);
    EXECUTE q INTO res;
    FOR i IN 1 .. cardinality(cols) LOOP
      IF res.counts[i] > 0 THEN
        INSERT INTO odoo_verify_finding VALUES ('e-mail outside ' || current_setting('odoo_mta.allowed_domains'), r.table_name || '.' || cols[i], res.counts[i]);
      END IF;
    END LOOP;
  END LOOP;
END
$verify$;

SELECT check_name AS "check", place, count FROM odoo_verify_finding ORDER BY place;
DO $fail$
DECLARE n bigint;
BEGIN
  SELECT count(*) INTO n FROM odoo_verify_finding;
  IF n > 0 THEN
    RAISE EXCEPTION 'refresh verification FAILED: % finding(s), listed above', n;
  END IF;
  RAISE NOTICE 'refresh verification passed';
END
$fail$;
ROLLBACK;

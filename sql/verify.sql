-- verify.sql — check a refreshed UAT database on its own, without PROD (read-only: rolled back).
--
--   psql -v ON_ERROR_STOP=1 -d DB -f sql/verify.sql [-v allowed_domains=example.invalid,example.com]
--
-- 1. neutralization: no active mail server but the dummy one, no active cron but the autovacuum, no
--    payment provider enabled, no OAuth provider, no website domain, the neutralized flag set;
-- 2. anonymization: the marker set, no API key / 2FA device / queued mail left, and no place holding a
--    credential of the secret catalogue (lib/secrets.sql, the same check as verify-secrets.sql);
-- 3. every text-like column of every table (from information_schema, not a list of known fields:
--    text, varchar, json/jsonb with their keys, text[], bytea up to 64 kB), without sampling, after
--    decoding HTML entities, URL escapes and non-breaking spaces (lib/pii.sql): no e-mail address
--    outside the allowed domains, no international phone number (but the reserved +1 0xx range the
--    anonymization writes), no checksum-valid IBAN (but the generated NLkkANON...) or BE/DE/FR/NL VAT
--    number (but the generated BE1... series).
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
\o /dev/null
\ir lib/pii.sql
\ir lib/secrets.sql
\o
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
  sel text[];
  kinds CONSTANT text[] := ARRAY['email', 'phone', 'iban', 'vat'];
  kind text;
  i int;
  j int;
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
  INSERT INTO odoo_verify_finding SELECT 'live credential (' || f.rule || ')', f.place, f.count FROM pg_temp.odoo_secret_findings() f;
  -- 3. personal data recognised by its shape (lib/pii.sql odoo_pii_kinds: e-mail addresses outside the
  --    allowed domains, also written &#64; / %40 or used as a JSON key; international phone numbers, also
  --    with &nbsp;; checksum-valid IBANs and BE/DE/FR/NL VAT numbers), every text-like column of every
  --    table (text, varchar, json/jsonb as text — keys included —, text[], bytea up to 64 kB), one pass per table
  FOR r IN
    SELECT c.table_name, array_agg(c.column_name ORDER BY c.ordinal_position) AS cols,
           array_agg(CASE WHEN c.data_type = 'bytea' THEN format('CASE WHEN octet_length(%1$I) <= 65536 THEN encode(%1$I, ''escape'') END', c.column_name)
                          ELSE format('%I::text', c.column_name) END ORDER BY c.ordinal_position) AS exprs
      FROM information_schema.columns c
      JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
     WHERE c.table_schema = current_schema()
       AND (c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json', 'bytea') OR c.data_type = 'ARRAY' AND c.udt_name IN ('_text', '_varchar'))
     GROUP BY c.table_name ORDER BY c.table_name
  LOOP
    cols := r.cols;
    aggs := '{}';
    sel := '{}';
    FOR i IN 1 .. cardinality(cols) LOOP
      sel := sel || format($k$CASE WHEN (%1$s) ~ '[@&%%]|[0-9]([ .()/-]?[0-9]){6}' THEN pg_temp.odoo_pii_kinds(%1$s, %2$L::text[]) ELSE '{}' END AS k%3$s$k$,
                           r.exprs[i], allowed, i);
      FOREACH kind IN ARRAY kinds LOOP
        aggs := aggs || format('count(*) FILTER (WHERE %L = ANY (k%s))', kind, i);
      END LOOP;
    END LOOP;
    q := format('SELECT ARRAY[%s]::bigint[] AS counts FROM (SELECT %s FROM ONLY %I OFFSET 0) s', array_to_string(aggs, ', '), array_to_string(sel, ', '), r.table_name);
    EXECUTE q INTO res;
    FOR i IN 1 .. cardinality(cols) LOOP
      FOR j IN 1 .. cardinality(kinds) LOOP
        IF res.counts[(i - 1) * cardinality(kinds) + j] > 0 THEN
          INSERT INTO odoo_verify_finding VALUES (CASE kinds[j] WHEN 'email' THEN 'e-mail outside ' || current_setting('odoo_mta.allowed_domains')
                                                      WHEN 'phone' THEN 'international phone number' WHEN 'iban' THEN 'valid IBAN' ELSE 'valid VAT number' END,
                                                 r.table_name || '.' || cols[i], res.counts[(i - 1) * cardinality(kinds) + j]);
        END IF;
      END LOOP;
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
